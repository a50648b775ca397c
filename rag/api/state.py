"""What the service keeps for its lifetime: models loaded once, collections opened once and
kept open, the least recently used closed past RAG_MAX_OPEN_COLLECTIONS.

The service is built on the Python API: each open collection is a ``rag.library.Documents``,
siblings sharing one copy of each model, and queries go through its retriever and answerer.
An Edge shard admits one process, so the service opens each collection once and shares it
between requests and the in-process job runner; the lock serialises opening, not searching.
Ingestion is handed over through the job queue; start-up code (``rag.api.app``) decides
whether a runner works through it in this process.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial

from rag.answering import Answerer, AnswerObserver, PreparedAnswer
from rag.config import Settings, validate_collection_name
from rag.embedding import Embedder
from rag.errors import InvalidInputError
from rag.explore.jobs import MapJobs
from rag.explore.stats import QuestionLog, QuestionOutcome
from rag.generation import Generator
from rag.generation.metered import GenerationObserver
from rag.job_runner import JobRunner
from rag.jobs import JobQueue
from rag.library import Documents, DocumentsClosedError, watched_generator
from rag.rerank import Reranker
from rag.retrieval import HybridRetriever
from rag.store.base import VectorStore
from rag.types import Answer

log = logging.getLogger(__name__)

# How long closing a collection waits for the requests that use it.
_CLOSE_WAIT_SECONDS = 30.0

_LEASE: ContextVar[list[tuple[ServiceState, str]] | None] = ContextVar(
    "rag_collections_in_use", default=None
)


@contextmanager
def collections_in_use() -> Iterator[None]:
    """Inside, every collection opened through ``ServiceState.store`` (in this context or a
    thread started from it) stays open until the block ends: a request or a job wraps its whole
    run in it, so a collection is never closed under it to make room for another."""
    lease: list[tuple[ServiceState, str]] = []
    token = _LEASE.set(lease)
    try:
        yield
    finally:
        _LEASE.reset(token)
        for state, name in lease:
            state.unpin(name)


class ServiceState:
    """``answers`` is told of every answer made, ``generation`` of every generation (the
    service's metrics)."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        generator: Generator,
        *,
        answers: AnswerObserver | None = None,
        generation: GenerationObserver | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.generator = generator
        self._answers = answers
        self._generation = generation
        self._documents = Documents(settings, embedder=embedder, llm=generator)
        self.started = int(time.time())
        self._stores: OrderedDict[str, Documents] = OrderedDict()  # least recently used first
        self._pins: Counter[str] = Counter()
        self._lock = threading.Condition(threading.Lock())  # notified as pins are dropped
        self.jobs = JobQueue.for_settings(settings)
        self.runner: JobRunner | None = None  # set by start-up when jobs run in this process
        self.maps = MapJobs()
        self.questions = QuestionLog.for_settings(settings) if settings.record_questions else None

    def documents(self, collection: str | None = None, *, create: bool = False) -> Documents:
        """The open collection, opened now if need be. At most RAG_MAX_OPEN_COLLECTIONS stay
        open: opening one more closes the least recently used that nothing is using."""
        name = collection or self.settings.collection
        try:
            validate_collection_name(name)
        except ValueError as exc:
            raise InvalidInputError(str(exc), field="collection") from None
        with self._lock:
            if name not in self._stores:
                documents = self._documents.sibling(name)
                # The default collection is created empty so a new service answers at once.
                documents.store(create=create or name == self.settings.collection)
                self._stores[name] = documents
            self._stores.move_to_end(name)
            lease = _LEASE.get()
            if lease is not None:
                lease.append((self, name))
                self._pins[name] += 1
            self._evict(keep=name)
            return self._stores[name]

    def store(self, collection: str | None = None, *, create: bool = False) -> VectorStore:
        """The open collection's store (``documents``)."""
        return self.documents(collection, create=create).store()

    @property
    def reranker(self) -> Reranker | None:
        return self._documents.models.reranker()

    def unpin(self, collection: str) -> None:
        """A request or job that used a collection is done with it."""
        with self._lock:
            self._pins[collection] -= 1
            if self._pins[collection] <= 0:
                del self._pins[collection]
                self._lock.notify_all()
            self._evict()

    def open_collections(self) -> list[str]:
        """The open collections, least recently used first."""
        with self._lock:
            return list(self._stores)

    def open_stores(self) -> list[tuple[str, VectorStore]]:
        """The open collections' stores, as they are now, without using them: none is opened,
        pinned or made more recently used. One may be closed by the time it is read."""
        with self._lock:
            opened = list(self._stores.items())
        stores = []
        for name, documents in opened:
            try:
                stores.append((name, documents.store()))
            except DocumentsClosedError:  # closed meanwhile
                continue
        return stores

    def _evict(self, keep: str | None = None) -> None:
        """With the lock held: close the least recently used collections that nothing uses
        until at most RAG_MAX_OPEN_COLLECTIONS are open (or only ones in use are left)."""
        excess = len(self._stores) - self.settings.max_open_collections
        if excess <= 0:
            return
        for name in [n for n in self._stores if n != keep and not self._pins[n]][:excess]:
            self._close(name)

    @contextmanager
    def switching(self, collection: str) -> Iterator[None]:
        """Close a collection and keep it closed for the block, as a rebuilt collection
        replaces it or it is dropped: requests that use it are waited for (up to
        ``_CLOSE_WAIT_SECONDS``; a slow client's stream may hold it longer), and requests that
        want it wait here for the moment of the switch, then open what is there."""
        with self._lock:
            self._lock.wait_for(lambda: not self._pins[collection], _CLOSE_WAIT_SECONDS)
            self._close(collection)
            yield

    def _close(self, collection: str) -> None:
        """With the lock held: forget an open collection and close it."""
        documents = self._stores.pop(collection, None)
        if documents is not None:
            documents.close()

    def retriever(self, collection: str | None = None) -> HybridRetriever:
        return self.documents(collection).retriever()

    def answerer(
        self, collection: str | None = None, *, cancel: threading.Event | None = None
    ) -> Answerer:
        """``cancel``: once set, the answer's generation stops at its next token."""
        name = collection or self.settings.collection
        observe = partial(self._observe, name) if self.questions or self._answers else None
        return self.documents(collection).answerer(
            cancel, observe=observe, generation_observer=self._generation
        )

    def task_generator(self, cancel: threading.Event | None = None) -> Generator:
        """The language model for a chat frontend's background task: measured as answers'
        generations are, and stopped at its next token once ``cancel`` is set."""
        return watched_generator(self.generator, cancel=cancel, observer=self._generation)

    def _observe(
        self, collection: str, prepared: PreparedAnswer, answer: Answer, quoting: bool
    ) -> None:
        if self._answers is not None:
            self._answers(prepared, answer, quoting)
        if self.questions is not None:
            self._record_outcome(collection, prepared, answer, quoting)

    def _record_outcome(
        self, collection: str, prepared: PreparedAnswer, answer: Answer, quoting: bool
    ) -> None:
        assert self.questions is not None
        best = max((h.similarity for h in prepared.hits), default=None)
        try:
            self.questions.record(
                QuestionOutcome(
                    collection=collection,
                    abstained=answer.abstained,
                    quoted=answer.extractive,
                    fallback=answer.extractive and not quoting,
                    top_similarity=best,
                )
            )
        except sqlite3.Error:  # statistics never cost an answer
            log.warning("could not record a question's outcome", exc_info=True)

    def close(self) -> None:
        if self.runner is not None and not self.runner.stop():
            # A job is still writing: its queue and collections stay open for it (closing them
            # under it would fail its writes); its lease returns it to a runner later.
            log.warning("a job is still running at shutdown; it will be run again")
            return
        if not self.maps.join(_CLOSE_WAIT_SECONDS):
            log.warning("a map build is still running at shutdown; its collections stay open")
            return
        self.jobs.close()
        if self.questions is not None:
            self.questions.close()
        with self._lock:
            for documents in self._stores.values():
                documents.close()
            self._stores.clear()
