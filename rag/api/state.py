"""What the service keeps for its lifetime: models loaded once, collections opened once.

An Edge shard admits one process, so the service opens each collection once and shares it
between requests and the in-process job runner; the lock serialises opening, not searching.
Ingestion is handed over through the job queue; start-up code (``rag.api.app``) decides
whether a runner works through it in this process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rag.answering import Answerer
from rag.catalog import open_collection
from rag.config import Settings, validate_collection_name
from rag.embedding import Embedder
from rag.errors import InvalidInputError
from rag.generation import Generator
from rag.jobs import JobQueue, JobRunner
from rag.query import build_judge, build_reranker
from rag.retrieval import HybridRetriever
from rag.store.base import VectorStore


class ServiceState:
    def __init__(self, settings: Settings, embedder: Embedder, generator: Generator) -> None:
        self.settings = settings
        self.embedder = embedder
        self.generator = generator
        self.reranker = build_reranker(settings)
        self.judge = build_judge(settings, generator)
        self.started = int(time.time())
        self._stores: dict[str, VectorStore] = {}
        self._lock = threading.Lock()
        self.jobs = JobQueue.for_settings(settings)
        self.runner: JobRunner | None = None  # set by start-up when jobs run in this process

    def store(self, collection: str | None = None, *, create: bool = False) -> VectorStore:
        name = collection or self.settings.collection
        try:
            validate_collection_name(name)
        except ValueError as exc:
            raise InvalidInputError(str(exc), field="collection") from None
        with self._lock:
            if name not in self._stores:
                # The default collection is created empty so a new service answers at once.
                self._stores[name] = open_collection(
                    self.settings,
                    self.embedder,
                    collection=name,
                    create=create or name == self.settings.collection,
                )
            return self._stores[name]

    @contextmanager
    def switching(self, collection: str) -> Iterator[None]:
        """Hold the lock while a reindexed collection replaces the old one: requests for it
        wait here for the moment of the switch, then open the new one."""
        with self._lock:
            self._close(collection)
            yield

    def release(self, collection: str) -> None:
        """Close a collection (before it is dropped)."""
        with self._lock:
            self._close(collection)

    def _close(self, collection: str) -> None:
        """With the lock held: forget an open collection and close it."""
        store = self._stores.pop(collection, None)
        if store is not None:
            store.close()

    def retriever(self, collection: str | None = None) -> HybridRetriever:
        return HybridRetriever(self.embedder, self.store(collection), self.settings, self.reranker)

    def answerer(self, collection: str | None = None) -> Answerer:
        return Answerer(self.retriever(collection), self.generator, self.settings, self.judge)

    def close(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        self.jobs.close()
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()
