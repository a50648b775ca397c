"""The vector store: one collection schema over Qdrant Edge (embedded) or a Qdrant server."""

from rag.store.base import CollectionInfo, SearchQuery, VectorStore

__all__ = ["CollectionInfo", "SearchQuery", "VectorStore"]
