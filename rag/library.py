"""The Python API: a collection you open, ingest into, search and ask, with async twins.

``rag.open(...)`` returns ``Documents``, one open collection. Models load on first use: the
embedding model for a search or an ingestion, the language model only for an answer. The
open store is shared by ingestion and queries (an embedded Qdrant Edge shard admits one
opener per process), so a ``Documents`` ingests while it serves queries, as the service does.

Every method may be called from several threads at once, and the ``a``-prefixed twins run
the blocking work in a worker thread: searches run side by side, ingestions one at a time,
and answers take one of RAG_GENERATION_CONCURRENCY slots (by default as many as the local
model decodes together, RAG_LLM_BATCH_SIZE).

The `rag ingest`, `rag ask` and `rag search` commands and the service (`rag serve`, whose
open collections are ``Documents`` siblings sharing one set of models) are built on this module.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pydantic import ValidationError

from ingest.pipeline import IngestProgress, IngestReport
from ingest.runs import check_paths, ingest_into, run_ingest
from ingest.source_names import names_for
from rag.answering import Answerer, AnswerObserver
from rag.catalog import open_collection
from rag.chat import live_tail, split_for_streaming, stream_mode
from rag.config import Settings
from rag.embedding import Embedder, build_embedder
from rag.errors import ConfigError, RagError
from rag.generation import Generator, close_generator
from rag.generation.cancel import CancellableGenerator, GenerationCancelled
from rag.generation.metered import GenerationObserver, MeteredGenerator
from rag.query import build_generator, build_judge, build_reranker
from rag.rerank import Reranker
from rag.retrieval import HybridRetriever, check_question
from rag.store.base import VectorStore
from rag.types import Answer, Hit

__all__ = [
    "AnswerStream",
    "AsyncAnswerStream",
    "Documents",
    "DocumentsClosedError",
    "Models",
    "open",
]

log = logging.getLogger(__name__)

PathLike = str | Path


class DocumentsClosedError(RagError):
    """A ``Documents`` was used after ``close()``."""


def open(
    collection: str | None = None,
    *,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    llm: Generator | None = None,
    **overrides: Any,
) -> Documents:
    """Open a collection (default: RAG_COLLECTION) for ingestion, search and answers.

    ``settings``: the base configuration (default: ``Settings()``, read from the RAG_*
    environment and ``.env``); ``overrides`` replace some of its fields, by their names in
    ``Settings`` (``data_dir="data"``, ``top_k=8``); an unknown name or an invalid value is a
    ``ConfigError``. ``embedder`` and ``llm``: models of your own, implementing
    ``rag.embedding.Embedder`` and ``rag.generation.Generator`` (``llm``, as ``generator``
    is the setting that chooses the configured kind). Nothing loads until first used.
    """
    return Documents(
        _configure(collection, settings=settings, **overrides), embedder=embedder, llm=llm
    )


def _configure(
    collection: str | None = None, *, settings: Settings | None = None, **overrides: Any
) -> Settings:
    """``settings`` (default: from the environment) with ``overrides`` and ``collection``
    applied and validated; ConfigError names what is wrong."""
    unknown = sorted(set(overrides) - set(Settings.model_fields))
    if unknown:
        raise ConfigError("; ".join(_unknown_setting(name) for name in unknown))
    if collection is not None:
        overrides["collection"] = collection
    try:
        if settings is None:
            return Settings(**overrides)
        if not overrides:
            return settings
        # Validated again as a whole: model_copy(update=...) would accept any value.
        return Settings(**(settings.model_dump() | overrides))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None


def _unknown_setting(name: str) -> str:
    close = difflib.get_close_matches(name, list(Settings.model_fields), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown setting {name!r}{hint}: settings are the fields of rag.Settings"


def watched_generator(
    generator: Generator,
    *,
    cancel: threading.Event | None = None,
    observer: GenerationObserver | None = None,
) -> Generator:
    """``generator`` measured for ``observer`` and stopped at its next token once ``cancel``
    is set, for each that is given."""
    if observer is not None:
        generator = MeteredGenerator(generator, observer)
    if cancel is not None:
        generator = CancellableGenerator(generator, cancel)
    return generator


class Models:
    """The models of a ``Documents`` and its siblings: each loaded once, on first use, from
    the settings, unless given."""

    def __init__(
        self, settings: Settings, *, embedder: Embedder | None = None, llm: Generator | None = None
    ) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._embedder = embedder
        self._llm = llm
        self._owns_llm = llm is None  # one built here is closed here
        self._reranker: Reranker | None = None
        self._reranker_built = False

    def embedder(self, *, bulk: bool = False) -> Embedder:
        with self._lock:
            if self._embedder is None:
                # One model shared by ingestion and queries, as in the service. The first use
                # picks the backend (RAG_EMBEDDING_BACKEND=auto): the bulk one when it is an
                # ingestion. Their vectors mix.
                self._embedder = build_embedder(self._settings, bulk=bulk)
            return self._embedder

    def llm(self) -> Generator:
        with self._lock:
            if self._llm is None:
                self._llm = build_generator(self._settings)
            return self._llm

    def reranker(self) -> Reranker | None:
        """The cross-encoder of RAG_RERANKER_MODEL, or None when there is none."""
        with self._lock:
            if not self._reranker_built:
                self._reranker = build_reranker(self._settings)
                self._reranker_built = True
            return self._reranker

    def close(self) -> None:
        """Close the language model if it was built here (one given is the giver's)."""
        with self._lock:
            llm, self._llm = (self._llm, None) if self._owns_llm else (None, self._llm)
        close_generator(llm)


class Documents:
    """One open collection: ingest into it, search it, ask it. Close it when done (or use
    it as a context manager, ``with`` or ``async with``)."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        llm: Generator | None = None,
    ) -> None:
        self._settings = settings
        self._models = Models(settings, embedder=embedder, llm=llm)
        self._owns_models = True  # a sibling shares them, and leaves them open
        self._store: VectorStore | None = None
        self._store_lock = threading.Lock()  # taken before the models lock, never after
        self._writing = threading.Lock()
        self._generating = threading.BoundedSemaphore(settings.generation_slots)
        self._state = threading.Condition()  # the calls in progress and the streams to stop
        self._users = 0
        self._streams: set[threading.Event] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"Documents(collection={self.collection!r}, data_dir='{self._settings.data_dir}')"

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def collection(self) -> str:
        return self._settings.collection

    # --- the API ------------------------------------------------------------------------

    def ingest(
        self,
        paths: PathLike | Iterable[PathLike],
        *,
        allow_empty: bool = False,
        progress: IngestProgress | None = None,
    ) -> IngestReport:
        """Sync files and folders into the collection, as `rag ingest` does (creating the
        collection): new and changed files are embedded, deleted ones removed, moved ones
        re-pointed. Files that fail are listed in the report (``report.ok`` is False); a
        missing path, or a folder emptied of documents that are stored, is an
        InvalidInputError unless ``allow_empty``."""
        files = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
        check_paths(self._settings, files, allow_empty=allow_empty)  # before any model loads
        with self._use(), self._writing:
            with self._store_lock:
                if self._store is None:
                    # Not open yet: the run opens it for itself, or not at all when nothing
                    # changed; queries wait for it to finish and open it afterwards.
                    return run_ingest(
                        self._settings,
                        files,
                        embedder=self._models.embedder(bulk=True),
                        progress=progress,
                        allow_empty=allow_empty,
                    )
                store = self._store
            return ingest_into(
                self._settings,
                store,
                self._models.embedder(bulk=True),
                files,
                progress=progress,
                allow_empty=allow_empty,
            )

    def search(self, query: str, *, k: int = 5, source_prefix: str | None = None) -> list[Hit]:
        """The ``k`` (1 to 100) chunks that best match ``query``, best first: hybrid search
        (dense and BM25); only files under ``source_prefix`` when given."""
        check_question(query, max_chars=self._settings.max_question_chars)
        with self._use():
            return self.retriever().search(query, k=k, source_prefix=source_prefix)

    def ask(self, question: str, *, source_prefix: str | None = None) -> Answer:
        """An answer with [n] citations: a quote of the passages (``extractive``), in quote
        mode or when the model's answer, checked against them, is not supported; else the
        model's answer; or an abstention."""
        check_question(question, max_chars=self._settings.max_question_chars)
        with self._use(), self._generating:
            return self.answerer().ask(question, source_prefix=source_prefix)

    def ask_stream(self, question: str, *, source_prefix: str | None = None) -> AnswerStream:
        """``ask``, as text pieces while they are made; the stream's ``answer`` is the checked
        Answer once it ends.

        RAG_STREAM_MODE decides what streams: 'checked' sends pieces of the checked answer,
        which join into ``answer.answer``; 'live' sends the model's tokens as written and,
        when the check replaced them by a quote (``answer.extractive``), ends with a marked
        correction quoting the documents. Quoted answers (RAG_ANSWER_MODE) stream as checked.
        Closing the stream early stops the generation."""
        check_question(question, max_chars=self._settings.max_question_chars)
        return AnswerStream(self._producer(question, source_prefix))

    def display_source(self, source: str) -> str:
        """How a source is shown to people: its path relative to the folder it was ingested
        from (rag.display)."""
        return names_for(self._settings, self.collection)(source)

    def close(self) -> None:
        """Stop the answers being streamed, wait for the calls in progress (an ingestion
        runs to its end), then close the collection. Idempotent."""
        with self._state:
            if self._closed:
                return
            self._closed = True
            for cancel in self._streams:
                cancel.set()
            self._state.wait_for(lambda: self._users == 0)
        with self._store_lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()
        if self._owns_models:
            self._models.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- for services built on it ---------------------------------------------------------

    @property
    def models(self) -> Models:
        """The models it uses, loaded on first use and shared with its siblings."""
        return self._models

    def sibling(self, collection: str) -> Documents:
        """Another collection under the same settings, sharing this one's models: how a
        service serves many collections with one copy of each model. Each is closed on its
        own."""
        sibling = Documents(self._configured(collection))
        sibling._models, sibling._owns_models = self._models, False
        return sibling

    def store(self, *, create: bool = False) -> VectorStore:
        """The collection's store, opened now if need be (and created empty, with
        ``create``); a missing collection is a CollectionNotFoundError."""
        with self._store_lock:
            if self._store is None:
                if self._closed:
                    raise DocumentsClosedError(f"collection {self.collection!r} is closed")
                self._store = open_collection(
                    self._settings, self._models.embedder(), create=create
                )
            return self._store

    def retriever(self) -> HybridRetriever:
        """A retriever over the collection as it is now (cheap: one per query)."""
        return HybridRetriever(
            self._models.embedder(), self.store(), self._settings, self._models.reranker()
        )

    def answerer(
        self,
        cancel: threading.Event | None = None,
        *,
        observe: AnswerObserver | None = None,
        generation_observer: GenerationObserver | None = None,
    ) -> Answerer:
        """An answerer over the collection; once ``cancel`` is set, its generation stops at
        the next token; ``observe`` is told of every answer it makes, ``generation_observer``
        of every generation."""
        llm = self._models.llm()
        judge = build_judge(self._settings, llm)
        llm = watched_generator(llm, cancel=cancel, observer=generation_observer)
        return Answerer(self.retriever(), llm, self._settings, judge, observe=observe)

    def _configured(self, collection: str) -> Settings:
        return self._settings.model_copy(update={"collection": collection})

    # --- async twins --------------------------------------------------------------------

    async def aingest(
        self,
        paths: PathLike | Iterable[PathLike],
        *,
        allow_empty: bool = False,
        progress: IngestProgress | None = None,
    ) -> IngestReport:
        """``ingest`` in a worker thread."""
        return await asyncio.to_thread(
            self.ingest, paths, allow_empty=allow_empty, progress=progress
        )

    async def asearch(
        self, query: str, *, k: int = 5, source_prefix: str | None = None
    ) -> list[Hit]:
        """``search`` in a worker thread."""
        return await asyncio.to_thread(self.search, query, k=k, source_prefix=source_prefix)

    async def aask(self, question: str, *, source_prefix: str | None = None) -> Answer:
        """``ask`` in a worker thread."""
        return await asyncio.to_thread(self.ask, question, source_prefix=source_prefix)

    def aask_stream(self, question: str, *, source_prefix: str | None = None) -> AsyncAnswerStream:
        """``ask_stream`` as an async iterator (``async for piece in ...``)."""
        check_question(question, max_chars=self._settings.max_question_chars)
        return AsyncAnswerStream(self._producer(question, source_prefix))

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- internals ----------------------------------------------------------------------

    @contextmanager
    def _use(self) -> Iterator[None]:
        """A call in progress: ``close`` waits for it."""
        with self._state:
            if self._closed:
                raise DocumentsClosedError(f"collection {self.collection!r} is closed")
            self._users += 1
        try:
            yield
        finally:
            with self._state:
                self._users -= 1
                self._state.notify_all()

    def _producer(self, question: str, source_prefix: str | None) -> _Producer:
        def produce(cancel: threading.Event, emit: Callable[[str], None]) -> Answer:
            with self._use():
                with self._state:
                    self._streams.add(cancel)
                try:
                    with self._generating:
                        return self._stream_answer(question, source_prefix, cancel, emit)
                finally:
                    with self._state:
                        self._streams.discard(cancel)

        return produce

    def _stream_answer(
        self,
        question: str,
        source_prefix: str | None,
        cancel: threading.Event,
        emit: Callable[[str], None],
    ) -> Answer:
        """Answerer.prepare, stream and finish, as ``Answerer.ask`` and ``ChatService`` do,
        with the pieces handed to ``emit`` as RAG_STREAM_MODE says."""
        started = time.perf_counter()
        answerer = self.answerer(cancel)
        prepared = answerer.prepare(question, source_prefix=source_prefix)
        generating = time.perf_counter()
        live = stream_mode(self._settings) == "live"
        if live and not answerer.quoting and not prepared.abstained:
            sent: list[str] = []
            for piece in answerer.stream(prepared):
                sent.append(piece)
                emit(piece)
            raw = "".join(sent)
            answer = answerer.finish(prepared, raw)
            tail = live_tail(raw, answer)
            if tail:
                emit(tail)
        else:
            answer = answerer.finish(prepared, "".join(answerer.stream(prepared)))
            for piece in split_for_streaming(answer.answer):
                emit(piece)
        if not prepared.abstained:
            answer.timings["generate_ms"] = (time.perf_counter() - generating) * 1000
        answer.timings["total_ms"] = (time.perf_counter() - started) * 1000
        return answer


_Producer = Callable[[threading.Event, Callable[[str], None]], Answer]
"""Makes one answer, handing its text pieces to the callable; stops once the event is set."""


@dataclass(frozen=True)
class _End:
    answer: Answer | None
    error: BaseException | None


def _run(produce: _Producer, cancel: threading.Event, put: Callable[[str | _End], None]) -> None:
    """The body of a stream's thread: the answer is made whatever the reader's pace, so the
    model is held only while it computes."""
    try:
        end = _End(produce(cancel, put), None)
    except GenerationCancelled:
        end = _End(None, None)  # the reader left
    except BaseException as exc:  # handed to the reader, raised there
        end = _End(None, exc)
    try:
        put(end)
    except RuntimeError:  # the reader's event loop is gone
        log.debug("an answer stream ended after its reader's event loop closed")


class _Stream:
    def __init__(self, produce: _Producer) -> None:
        self._produce = produce
        self._cancel = threading.Event()
        self._started = False
        self._ended = False
        self._answer: Answer | None = None

    @property
    def answer(self) -> Answer | None:
        """The checked Answer, once the stream has ended (None before)."""
        return self._answer

    def _start(self, put: Callable[[str | _End], None]) -> None:
        self._started = True
        threading.Thread(
            target=_run, args=(self._produce, self._cancel, put), name="rag-answer", daemon=True
        ).start()

    def _end(self, end: _End) -> None:
        self._ended = True
        if end.error is not None:
            raise end.error
        self._answer = end.answer

    def __del__(self) -> None:
        self._cancel.set()  # nobody will read the rest


class AnswerStream(_Stream, Iterator[str]):
    """Text pieces of an answer (``for piece in stream``); then ``answer`` is the checked
    Answer. ``close()`` (or leaving a ``with`` block) stops the generation."""

    def __init__(self, produce: _Producer) -> None:
        super().__init__(produce)
        self._items: queue.SimpleQueue[str | _End] = queue.SimpleQueue()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> str:
        if self._ended:
            raise StopIteration
        if not self._started:
            self._start(self._items.put)
        item = self._items.get()
        if isinstance(item, _End):
            self._end(item)
            raise StopIteration
        return item

    def final_answer(self) -> Answer:
        """Read what is left of the stream, and return the checked Answer."""
        for _ in self:
            pass
        if self._answer is None:
            raise DocumentsClosedError("the stream was closed before its answer was made")
        return self._answer

    def close(self) -> None:
        self._cancel.set()
        self._ended = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncAnswerStream(_Stream, AsyncIterator[str]):
    """Text pieces of an answer (``async for piece in stream``); then ``answer`` is the
    checked Answer. ``await aclose()`` (or leaving an ``async with`` block) stops the
    generation."""

    def __init__(self, produce: _Producer) -> None:
        super().__init__(produce)
        self._items: asyncio.Queue[str | _End] = asyncio.Queue()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        if self._ended:
            raise StopAsyncIteration
        if not self._started:
            loop, items = asyncio.get_running_loop(), self._items  # the thread holds no self

            def put(item: str | _End) -> None:
                loop.call_soon_threadsafe(items.put_nowait, item)

            self._start(put)
        item = await self._items.get()
        if isinstance(item, _End):
            self._end(item)
            raise StopAsyncIteration
        return item

    async def final_answer(self) -> Answer:
        """Read what is left of the stream, and return the checked Answer."""
        async for _ in self:
            pass
        if self._answer is None:
            raise DocumentsClosedError("the stream was closed before its answer was made")
        return self._answer

    async def aclose(self) -> None:
        self._cancel.set()
        self._ended = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
