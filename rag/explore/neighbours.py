"""Documents similar to a document, found by Qdrant from the collection's stored vectors."""

from __future__ import annotations

from dataclasses import dataclass

from rag.errors import DocumentNotFoundError
from rag.store.base import VectorStore

# The document's chunks given to Qdrant as examples, spread evenly over it: a long document's
# every chunk would make the query slower without finding other neighbours.
_EXAMPLES = 32
# Chunks asked for per document wanted: several chunks of one neighbour usually rank together.
_CHUNKS_PER_DOCUMENT = 8


@dataclass(frozen=True)
class SimilarDocument:
    source: str
    title: str
    score: float
    """The best cosine similarity between a chunk of it and a chunk of the document."""
    chunk_id: str
    text: str
    """Its chunk closest to the document."""


def similar_documents(store: VectorStore, source: str, *, k: int) -> list[SimilarDocument]:
    """The ``k`` other documents with the chunks nearest to ``source``'s, best first;
    DocumentNotFoundError when the collection has no chunk of ``source``."""
    chunks = store.source_chunks(source)
    if not chunks:
        raise DocumentNotFoundError(f"no document {source!r} in collection {store.collection!r}")
    step = max(1, len(chunks) // _EXAMPLES)
    examples = [c.id for c in chunks[::step][:_EXAMPLES]]
    hits = store.recommend(examples, k=k * _CHUNKS_PER_DOCUMENT, exclude_source=source)
    found: dict[str, SimilarDocument] = {}
    for hit in hits:  # best first, so a document's first hit is its best
        chunk = hit.chunk
        if chunk.source not in found:
            found[chunk.source] = SimilarDocument(
                chunk.source, chunk.title, hit.score, chunk.id, chunk.text
            )
    return list(found.values())[:k]
