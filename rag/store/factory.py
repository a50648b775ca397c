"""The one place where the configured store kind is chosen."""

from __future__ import annotations

from rag.config import Settings
from rag.store.base import CollectionInfo, Collections, VectorStore


def collections_for(settings: Settings) -> Collections:
    """The configured store's collections: open, list, lock, drop, rebuild and swap."""
    if settings.store == "edge":
        from rag.store.edge import EdgeCollections

        return EdgeCollections(settings.data_dir)
    from rag.store.server import ServerCollections

    return ServerCollections(settings)


def open_store(
    settings: Settings, info: CollectionInfo, *, collection: str | None = None, create: bool = False
) -> VectorStore:
    """Open (or with ``create``, create) a collection; fails if it was built with another model."""
    return collections_for(settings).open(collection or settings.collection, info, create=create)
