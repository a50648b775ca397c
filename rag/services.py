"""What the CLI and the API do, built from Settings: ingest, answer, manage collections."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ingest.chunking import TokenChunker
from ingest.loaders import SUPPORTED_EXTENSIONS
from ingest.sync import Plan, SyncState, plan_sync
from ingest.worker import IngestProgress, IngestReport, IngestWorker, settings_signature
from rag.answering import Answerer
from rag.config import Settings
from rag.embedding import Embedder
from rag.generation import Generator
from rag.retrieval import HybridRetriever
from rag.runtime import build_embedder, build_generator, open_collection, state_path
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
        )
        return worker.run(paths, progress)
    finally:
        state.close()


def plan_ingest(settings: Settings, paths: Sequence[Path]) -> Plan:
    """What `rag ingest` would do, computed without opening the store or writing anything."""
    embedder = build_embedder(settings)
    return plan_sync(
        paths,
        SyncState.read_records(state_path(settings, settings.collection)),
        signature=settings_signature(embedder, make_chunker(settings, embedder)),
        extensions=SUPPORTED_EXTENSIONS,
        max_file_bytes=settings.max_file_bytes,
    )


def watch_ingest(
    settings: Settings,
    paths: Sequence[Path],
    *,
    on_report: Callable[[IngestReport], None],
    stop: threading.Event | None = None,
) -> None:
    """Sync once, then again whenever files under ``paths`` change, until ``stop`` is set."""
    from watchfiles import watch

    embedder = build_embedder(settings)
    store = open_collection(settings, embedder, create=True)
    try:
        on_report(ingest_into(settings, store, embedder, paths))
        for changes in watch(*paths, stop_event=stop, debounce=1000, recursive=True):
            log.info("%d changes under the watched folders", len(changes))
            on_report(ingest_into(settings, store, embedder, paths))
    finally:
        store.close()


def run_ingest(
    settings: Settings, paths: Sequence[Path], *, progress: IngestProgress | None = None
) -> IngestReport:
    embedder = build_embedder(settings)
    store = open_collection(settings, embedder, create=True)
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
        yield HybridRetriever(embedder, store, settings)
    finally:
        store.close()


@contextmanager
def open_answerer(settings: Settings, generator: Generator | None = None) -> Iterator[Answerer]:
    with open_retriever(settings) as retriever:
        yield Answerer(retriever, generator or build_generator(settings), settings)


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
    state = state_path(settings, name)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{state}{suffix}").unlink(missing_ok=True)


__all__ = [
    "drop_collection",
    "ingest_into",
    "list_collections",
    "open_answerer",
    "open_retriever",
    "run_ingest",
]
