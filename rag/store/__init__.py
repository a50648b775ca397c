"""The vector store: one collection schema over Qdrant Edge (embedded) or a Qdrant server."""

from rag.store.base import CollectionInfo, Collections, SearchQuery, VectorStore
from rag.store.factory import collections_for, open_store

__all__ = [
    "CollectionInfo",
    "Collections",
    "SearchQuery",
    "VectorStore",
    "collections_for",
    "open_store",
]
