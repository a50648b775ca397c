"""What the CLI and the API do, built from Settings: ingest, answer, manage collections."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ingest.chunking import TokenChunker
from ingest.sync import SyncState
from ingest.worker import IngestProgress, IngestReport, IngestWorker
from rag.answering import Answerer
from rag.config import Settings
from rag.embedding import Embedder
from rag.generation import Generator
from rag.retrieval import HybridRetriever
from rag.runtime import build_embedder, build_generator, open_collection, state_path
from rag.store.base import VectorStore


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
        )
        return worker.run(paths, progress)
    finally:
        state.close()


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
