"""Collection management: open, list and drop collections, and where each one's ingestion
state lives. A collection is its vectors in the store plus that state file; dropping one
removes both."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from rag.config import Settings
from rag.embedding import Embedder
from rag.store.base import CollectionInfo, VectorStore
from rag.store.factory import collections_for


def collection_info(embedder: Embedder) -> CollectionInfo:
    """What a collection records of the model that embeds into it."""
    return CollectionInfo(embedding_model=embedder.model_name, dimension=embedder.dimension)


def open_collection(
    settings: Settings, embedder: Embedder, *, collection: str | None = None, create: bool = False
) -> VectorStore:
    """Open ``collection`` (default: the configured one) for ``embedder``'s vectors."""
    name = collection or settings.collection
    return collections_for(settings).open(name, collection_info(embedder), create=create)


def state_path(settings: Settings, collection: str) -> Path:
    """Ingestion state lives beside the data even when the store is a remote server."""
    return settings.data_dir / "state" / f"{collection}.sqlite"


def list_collections(settings: Settings) -> list[str]:
    return collections_for(settings).list()


def drop_collection(
    settings: Settings,
    name: str,
    *,
    closed: Callable[[], AbstractContextManager[None]] = nullcontext,
) -> None:
    """Delete the collection's vectors, then its ingestion state, as its writer
    (StoreLockedError, naming the holder, while another writer is at work). ``closed``
    brackets the deletion once the writer lock is held: a service closes its open copy in it
    and keeps it from being opened again until the deletion is done."""
    collections = collections_for(settings)
    with collections.writer(name), closed():
        collections.drop(name)
        remove_state(settings, name)


def remove_state(settings: Settings, collection: str) -> None:
    state = state_path(settings, collection)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{state}{suffix}").unlink(missing_ok=True)
