"""What the service keeps for its lifetime: models loaded once, collections opened once.

An Edge shard admits one process, so the service opens each collection once and shares it
between requests; the lock serialises opening, not searching.
"""

from __future__ import annotations

import threading

from rag.answering import Answerer
from rag.config import Settings, validate_collection_name
from rag.embedding import Embedder
from rag.errors import InvalidInputError
from rag.generation import Generator
from rag.retrieval import HybridRetriever
from rag.runtime import open_collection
from rag.store.base import VectorStore


class ServiceState:
    def __init__(self, settings: Settings, embedder: Embedder, generator: Generator) -> None:
        self.settings = settings
        self.embedder = embedder
        self.generator = generator
        self._stores: dict[str, VectorStore] = {}
        self._lock = threading.Lock()

    def store(self, collection: str | None = None) -> VectorStore:
        name = collection or self.settings.collection
        try:
            validate_collection_name(name)
        except ValueError as exc:
            raise InvalidInputError(str(exc), field="collection") from None
        with self._lock:
            if name not in self._stores:
                # The default collection is created empty so a new service answers at once.
                create = name == self.settings.collection
                self._stores[name] = open_collection(
                    self.settings, self.embedder, collection=name, create=create
                )
            return self._stores[name]

    def retriever(self, collection: str | None = None) -> HybridRetriever:
        return HybridRetriever(self.embedder, self.store(collection), self.settings)

    def answerer(self, collection: str | None = None) -> Answerer:
        return Answerer(self.retriever(collection), self.generator, self.settings)

    def close(self) -> None:
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()
