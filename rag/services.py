"""What the CLI and the API do, built from Settings: ingest, answer, manage collections."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ingest.chunking import TokenChunker
from ingest.loaders import SUPPORTED_EXTENSIONS
from ingest.sync import Plan, SyncState, plan_sync
from ingest.worker import IngestProgress, IngestReport, IngestWorker, settings_signature
from rag.answering import Answerer
from rag.config import Settings
from rag.embedding import Embedder, build_embedder
from rag.errors import CollectionNotFoundError, InvalidInputError, PermissionDeniedError
from rag.generation import Generator
from rag.retrieval import HybridRetriever
from rag.runtime import (
    build_generator,
    build_judge,
    build_reranker,
    open_collection,
    state_path,
)
from rag.store.base import VectorStore

log = logging.getLogger(__name__)


def make_chunker(settings: Settings, embedder: Embedder) -> TokenChunker:
    return TokenChunker(
        embedder.count_tokens,
        max_tokens=embedder.max_tokens,
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
    )


def ingest_into(
    settings: Settings,
    store: VectorStore,
    embedder: Embedder,
    paths: Sequence[Path],
    *,
    progress: IngestProgress | None = None,
) -> IngestReport:
    state = SyncState(state_path(settings, store.collection))
    try:
        worker = IngestWorker(
            embedder=embedder,
            store=store,
            state=state,
            chunker=make_chunker(settings, embedder),
            max_file_bytes=settings.max_file_bytes,
            batch_chunks=settings.ingest_batch_chunks,
            exclude=settings.ingest_exclude,
        )
        report = worker.run(paths, progress)
        if report.changed:
            store.build_index()
        return report
    finally:
        state.close()


def plan_ingest(
    settings: Settings, paths: Sequence[Path], *, embedder: Embedder | None = None
) -> Plan:
    """What `rag ingest` would do, computed without opening the store or writing anything."""
    embedder = embedder or build_embedder(settings, bulk=True)
    return plan_sync(
        paths,
        SyncState.read_records(state_path(settings, settings.collection)),
        signature=settings_signature(embedder, make_chunker(settings, embedder)),
        extensions=SUPPORTED_EXTENSIONS,
        max_file_bytes=settings.max_file_bytes,
        exclude=settings.ingest_exclude,
    )


def _idle_report(
    settings: Settings, embedder: Embedder, paths: Sequence[Path]
) -> IngestReport | None:
    """The report of a run with nothing to do, found from the ingestion state alone, so that
    a no-op re-run never opens the store (opening an Edge shard is a third of such a run).
    None when there is anything to write, or an interrupted run to recover: the worker then
    plans again once it holds the store, as another process may have synced meanwhile."""
    started = time.perf_counter()
    path = state_path(settings, settings.collection)
    if not path.is_file() or SyncState.read_pending(path):
        return None
    plan = plan_ingest(settings, paths, embedder=embedder)
    if not plan.empty or plan.touched:
        return None
    report = IngestReport(unchanged=list(plan.unchanged), failed=list(plan.failed))
    report.seconds = time.perf_counter() - started
    log.info("ingest: %s", report.summary())
    return report


def watch_ingest(
    settings: Settings,
    paths: Sequence[Path],
    *,
    on_report: Callable[[IngestReport], None],
    stop: threading.Event | None = None,
) -> None:
    """Sync once, then again whenever files under ``paths`` change, until ``stop`` is set."""
    from watchfiles import watch

    embedder = build_embedder(settings, bulk=True)
    store = open_collection(settings, embedder, create=True)
    try:
        on_report(ingest_into(settings, store, embedder, paths))
        for changes in watch(*paths, stop_event=stop, debounce=1000, recursive=True):
            log.info("%d changes under the watched folders", len(changes))
            on_report(ingest_into(settings, store, embedder, paths))
    finally:
        store.close()


def run_ingest(
    settings: Settings,
    paths: Sequence[Path],
    *,
    collection: str | None = None,
    embedder: Embedder | None = None,
    progress: IngestProgress | None = None,
) -> IngestReport:
    """Open (creating) the collection, sync ``paths`` into it, close it."""
    embedder = embedder or build_embedder(settings, bulk=True)
    if collection is not None:
        settings = settings.model_copy(update={"collection": collection})
    idle = _idle_report(settings, embedder, paths)
    if idle is not None:
        return idle
    store = open_collection(settings, embedder, collection=collection, create=True)
    try:
        return ingest_into(settings, store, embedder, paths, progress=progress)
    finally:
        store.close()


@contextmanager
def open_retriever(
    settings: Settings, embedder: Embedder | None = None
) -> Iterator[HybridRetriever]:
    embedder = embedder or build_embedder(settings)
    store = open_collection(settings, embedder)
    try:
        yield HybridRetriever(embedder, store, settings, build_reranker(settings))
    finally:
        store.close()


@contextmanager
def open_answerer(settings: Settings, generator: Generator | None = None) -> Iterator[Answerer]:
    with open_retriever(settings) as retriever:
        generator = generator or build_generator(settings)
        yield Answerer(retriever, generator, settings, build_judge(settings, generator))


def list_collections(settings: Settings) -> list[str]:
    if settings.store == "edge":
        from rag.store.edge import list_edge_collections

        return list_edge_collections(settings.data_dir)
    from rag.store.server import list_server_collections

    return list_server_collections(settings)


def drop_collection(settings: Settings, name: str) -> None:
    if settings.store == "edge":
        from rag.store.edge import drop_edge_collection

        drop_edge_collection(settings.data_dir, name)
    else:
        from rag.store.server import drop_server_collection

        drop_server_collection(settings, name)
    _remove_state(settings, name)


__all__ = [
    "drop_collection",
    "ingest_into",
    "list_collections",
    "open_answerer",
    "open_retriever",
    "run_ingest",
]


@dataclass(frozen=True)
class DocumentInfo:
    source: str
    chunks: int
    size: int
    sha256: str


def list_documents(settings: Settings, collection: str) -> list[DocumentInfo]:
    records = SyncState.read_records(state_path(settings, collection))
    return [
        DocumentInfo(r.source, len(r.chunk_ids), r.size, r.sha256)
        for r in sorted(records.values(), key=lambda r: r.source)
    ]


def delete_document(settings: Settings, store: VectorStore, source: str) -> int:
    """Remove one document's chunks and its state; returns how many chunks went."""
    state = SyncState(state_path(settings, store.collection))
    try:
        record = state.records().get(source)
        if record is None:
            raise CollectionNotFoundError(
                f"no document {source!r} in collection {store.collection!r}"
            )
        store.delete(list(record.chunk_ids))
        store.delete_source(source)  # and anything a crashed run may have left under it
        state.forget([source])
        return len(record.chunk_ids)
    finally:
        state.close()


def resolve_under_roots(path: str, roots: Sequence[Path]) -> Path:
    """A server-side folder the API may ingest: inside a configured root, after resolving
    symlinks and '..', so no request reaches outside them."""
    if not roots:
        raise PermissionDeniedError(
            "ingesting server folders through the API is disabled (set RAG_INGEST_ROOTS)"
        )
    resolved = Path(path).expanduser().resolve()
    for root in roots:
        if resolved.is_relative_to(root.expanduser().resolve()):
            if not resolved.exists():
                raise InvalidInputError(f"{path}: no such file or folder", field="path")
            return resolved
    raise PermissionDeniedError(f"{path} is outside the allowed ingest roots")


def run_worker(
    settings: Settings, *, watch: Sequence[Path] = (), stop: threading.Event | None = None
) -> None:
    """`rag worker`: run the API's queued ingestion jobs in a process of its own, and keep
    ``watch`` folders in sync. Meant for a Qdrant server; the embedded store admits one process.
    """
    from rag.jobs import Job, JobProgress, JobQueue, JobRunner

    stop = stop or threading.Event()
    if settings.store == "edge":
        log.warning(
            "rag worker with the embedded store: it cannot run while `rag serve` holds the "
            "store open; use RAG_STORE=qdrant to run both"
        )
    embedder = build_embedder(settings, bulk=True)

    def run(job: Job, progress: JobProgress) -> IngestReport:
        paths = [Path(p) for p in job.paths]
        return run_ingest(
            settings, paths, collection=job.collection, embedder=embedder, progress=progress
        )

    watcher = None
    if watch:
        watcher = threading.Thread(
            target=watch_ingest,
            args=(settings, watch),
            kwargs={"on_report": lambda r: log.info("sync: %s", r.summary()), "stop": stop},
            name="watch",
            daemon=True,
        )
        watcher.start()
    queue = JobQueue(settings.data_dir / "jobs.sqlite")
    runner = JobRunner(queue, run)
    runner.start()
    log.info("worker ready: running ingestion jobs from %s", settings.data_dir / "jobs.sqlite")
    try:
        stop.wait()
    finally:
        runner.stop()
        queue.close()


def reindex(
    settings: Settings,
    embedder: Embedder,
    *,
    collection: str | None = None,
    switching: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
    progress: IngestProgress | None = None,
) -> IngestReport:
    """Rebuild a collection with the current embedding model and chunking settings.

    The new collection is built beside the old one, which keeps serving; then the two are
    switched: an alias moved atomically on a Qdrant server, a folder swap on the embedded
    store. ``switching`` brackets the switch: the service closes the old collection in it and
    holds its lock, so queries wait a moment instead of failing. Files are read again from
    their paths; those gone since are left out.
    """
    name = collection or settings.collection
    records = SyncState.read_records(state_path(settings, name))
    if not records:
        raise CollectionNotFoundError(f"collection {name!r} has no ingested documents to rebuild")
    files = [Path(s) for s in sorted(records) if Path(s).is_file()]
    if settings.store == "edge":
        from rag.store.edge import drop_edge_collection, swap_edge_collection

        built = f"{name}.reindex"
        with contextlib.suppress(CollectionNotFoundError):
            drop_edge_collection(settings.data_dir, built)  # left by an interrupted reindex
    else:
        from rag.store.server import swap_server_collection, versioned

        built = versioned(name)
    _remove_state(settings, built)
    store = open_collection(settings, embedder, collection=built, create=True)
    try:
        report = ingest_into(settings, store, embedder, files, progress=progress)
    finally:
        store.close()
    with switching():
        if settings.store == "edge":
            swap_edge_collection(settings.data_dir, name, built)
        else:
            swap_server_collection(settings, name, built)
        _remove_state(settings, name)
        state_path(settings, built).replace(state_path(settings, name))
    log.info("reindexed %r: %s", name, report.summary())
    return report


def _remove_state(settings: Settings, collection: str) -> None:
    state = state_path(settings, collection)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{state}{suffix}").unlink(missing_ok=True)
