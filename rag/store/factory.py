"""The one place where the configured store kind is chosen."""

from __future__ import annotations

from rag.config import Settings
from rag.store.base import CollectionInfo, VectorStore


def open_store(
    settings: Settings, info: CollectionInfo, *, collection: str | None = None, create: bool = False
) -> VectorStore:
    """Open (or with ``create``, create) a collection; fails if it was built with another model."""
    name = collection or settings.collection
    if settings.store == "edge":
        from rag.store.edge import EdgeVectorStore

        return EdgeVectorStore(settings.data_dir, name, info, create=create)
    from rag.store.server import QdrantServerStore, client_for

    return QdrantServerStore(client_for(settings), name, info, create=create)
