"""What every store shares: the protocol, the collection schema, payloads and BM25 encoding."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from rag.errors import CollectionMismatchError
from rag.types import Chunk, Hit

if TYPE_CHECKING:
    import qdrant_edge

DENSE = "dense"
SPARSE = "bm25"
SCHEMA_VERSION = 1
# Payload fields with a keyword index: filters and per-file deletes read them.
INDEXED_FIELDS = ("source", "path_prefixes")


@dataclass(frozen=True)
class CollectionInfo:
    """Recorded with a collection when it is created; opening it with another model fails."""

    embedding_model: str
    dimension: int
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CollectionInfo:
        return cls(
            embedding_model=str(data["embedding_model"]),
            dimension=int(data["dimension"]),
            schema_version=int(data.get("schema_version", SCHEMA_VERSION)),
        )

    def check_compatible(self, wanted: CollectionInfo, collection: str) -> None:
        if (self.embedding_model, self.dimension) != (wanted.embedding_model, wanted.dimension):
            raise CollectionMismatchError(
                f"collection {collection!r} was built with embedding model "
                f"{self.embedding_model!r} ({self.dimension} dims), but the configured model is "
                f"{wanted.embedding_model!r} ({wanted.dimension} dims). Use the model it was "
                "built with, or ingest into another collection (--collection NAME)."
            )


@dataclass(frozen=True)
class SearchQuery:
    text: str
    vector: np.ndarray
    k: int = 5
    prefetch_k: int = 100
    fusion: Literal["dbsf", "rrf"] = "dbsf"
    rrf_k: int = 60
    source_prefix: str | None = None


class VectorStore(Protocol):
    """One open collection. Implementations: EdgeVectorStore, QdrantServerStore."""

    @property
    def collection(self) -> str: ...

    @property
    def info(self) -> CollectionInfo: ...

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Write chunks with their dense vectors; BM25 vectors are computed here."""
        ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def delete_source(self, source: str) -> None: ...

    def search(self, query: SearchQuery) -> list[Hit]:
        """Dense and BM25 candidates fused by RRF inside Qdrant, best first."""
        ...

    def fetch(self, ids: Sequence[str]) -> list[tuple[Chunk, np.ndarray]]:
        """Stored chunks with their dense vectors, in the order asked; missing ids are left out."""
        ...

    def point_ids(self) -> set[str]:
        """Every point id in the collection (for checks that the store mirrors the folders)."""
        ...

    def count(self, *, exact: bool = True) -> int:
        """Stored chunks; ``exact=False`` may estimate, from index metadata, at a fraction of
        the cost (2.5 ms vs 0.02 ms on Edge at 21,000 chunks)."""
        ...

    def unknown_words(self, words: Sequence[str]) -> list[str]:
        """The words that no stored chunk contains, as Qdrant's BM25 tokenizer reads them
        (stemmed: 'folders' matches 'folder'); stopwords are never unknown."""
        ...

    def build_index(self) -> bool:
        """Index vectors written since the last call when there are enough of them to make
        searching them one by one slow; True when it did. A Qdrant server does this itself."""
        ...

    def close(self) -> None: ...


@lru_cache(maxsize=1)
def bm25_model() -> qdrant_edge.Bm25:
    """Qdrant's own BM25 tokenizer (English stemming and stopwords), used by both stores.

    Documents get term-frequency weights; the IDF modifier of the sparse vector supplies
    the inverse document frequency inside Qdrant at query time.
    """
    import qdrant_edge

    return qdrant_edge.Bm25(qdrant_edge.Bm25Config(language="english"))


def term_absent(word: str, absent: Callable[[Any], bool]) -> bool:
    """Whether ``absent`` finds no chunk for the word's BM25 query (False for stopwords)."""
    sparse = bm25_model().embed_query(word)
    return bool(sparse.indices) and absent(sparse)


def path_prefixes(source: str) -> list[str]:
    """Every ancestor folder of a source and the source itself, for exact-match prefix filters."""
    path = PurePosixPath(source)
    return [str(p) for p in reversed(path.parents) if str(p) not in (".", "")] + [str(path)]


def normalize_prefix(prefix: str) -> str:
    text = prefix.strip()
    return text.rstrip("/") if len(text) > 1 else text


def to_payload(chunk: Chunk) -> dict[str, Any]:
    return {
        "text": chunk.text,
        "source": chunk.source,
        "title": chunk.title,
        "heading_path": list(chunk.heading_path),
        "page": chunk.page,
        "start": chunk.start,
        "end": chunk.end,
        "context": chunk.context,
        "path_prefixes": path_prefixes(chunk.source),
    }


def from_payload(point_id: object, payload: dict[str, Any]) -> Chunk:
    return Chunk(
        id=str(point_id),
        source=payload["source"],
        title=payload.get("title", ""),
        text=payload["text"],
        heading_path=tuple(payload.get("heading_path") or ()),
        page=payload.get("page"),
        start=int(payload.get("start", 0)),
        end=int(payload.get("end", 0)),
        context=payload.get("context", ""),
    )


def dense_of(vector: object) -> np.ndarray:
    if isinstance(vector, dict):
        vector = vector.get(DENSE)
    return np.asarray(vector, dtype=np.float32)


def in_order(ids: Sequence[str], records: Iterable[Any]) -> list[tuple[Chunk, np.ndarray]]:
    """Retrieved records (with payload and dense vector) as chunks, in the order asked."""
    found = {str(r.id): (from_payload(r.id, r.payload or {}), dense_of(r.vector)) for r in records}
    return [found[i] for i in ids if i in found]


def all_ids(page: Callable[[Any], tuple[Sequence[Any], Any]]) -> set[str]:
    """Every id, scrolling page by page: ``page(offset)`` returns (records, next offset)."""
    ids: set[str] = set()
    offset = None
    while True:
        records, offset = page(offset)
        ids.update(str(r.id) for r in records)
        if offset is None:
            return ids


def cosine(query: np.ndarray, vector: object) -> float:
    """Both sides are unit length, so the dot product is the cosine similarity."""
    if isinstance(vector, dict):
        vector = vector.get(DENSE)
    if vector is None:
        return 0.0
    return float(np.dot(query, np.asarray(vector, dtype=np.float32)))
