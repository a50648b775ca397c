"""What every store shares: the protocol, the collection schema, payloads and BM25 encoding."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from filelock import FileLock, Timeout

from rag.errors import CollectionMismatchError, StoreLockedError
from rag.types import Chunk, Hit

if TYPE_CHECKING:
    import qdrant_edge

DENSE = "dense"
SPARSE = "bm25"
SCHEMA_VERSION = 1
# Payload fields with a keyword index: filters and per-file deletes read them.
INDEXED_FIELDS = ("source", "path_prefixes")
# The HNSW beam of a dense search, per result wanted. Qdrant's default beam is the number of
# results (at least ef_construct, 100), which misses some of the true nearest ones at that
# depth; a wider beam finds nearly all of them at a small cost (decisions.md, Retrieval).
HNSW_EF_PER_RESULT = 4


def hnsw_ef(limit: int) -> int:
    """The HNSW beam width (``hnsw_ef``) for a dense search of ``limit`` results."""
    return HNSW_EF_PER_RESULT * limit


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


class Collections(Protocol):
    """The collections of one store. Implementations: EdgeCollections, ServerCollections;
    ``rag.store.factory.collections_for`` chooses between them."""

    exclusive: bool
    """True when one process at a time may open a collection (the embedded store)."""

    def open(self, name: str, info: CollectionInfo, *, create: bool = False) -> VectorStore:
        """Open (or with ``create``, create) a collection; CollectionMismatchError if it was
        built with another embedding model, CollectionNotFoundError if it does not exist."""
        ...

    def list(self) -> list[str]:
        """User-facing collection names, sorted; collections under construction are left out."""
        ...

    def lock(self, name: str) -> AbstractContextManager[None]:
        """Hold the collection exclusively across processes for the block; StoreLockedError
        at once when another process holds it."""
        ...

    def writer(self, name: str) -> AbstractContextManager[None]:
        """Be the collection's one writer for the block, across processes; StoreLockedError
        at once, naming the holder, when another writer (in this process or another) is.
        Independent of ``lock`` and of open stores: readers never take it."""
        ...

    def drop(self, name: str) -> None:
        """Delete a collection; CollectionNotFoundError if there is none."""
        ...

    def staging_name(self, name: str) -> str:
        """The collection a rebuild of ``name`` is written into before ``swap``."""
        ...

    def swap(self, name: str, built: str) -> None:
        """Make the finished collection ``built`` the collection ``name`` and drop the old one.
        Neither may be open."""
        ...


def record_holder(path: Path) -> None:
    """Write who holds a lock (pid, host, command) to ``path``, for the message others get."""
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:2]]) if sys.argv else "python"
    with contextlib.suppress(OSError):
        path.write_text(
            json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": command})
        )


def describe_holder(path: Path) -> str:
    """`` (pid N on HOST: COMMAND)`` from a file ``record_holder`` wrote, or '' if unknown."""
    try:
        holder = json.loads(path.read_text())
        return f" (pid {holder['pid']} on {holder['host']}: {holder['command']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


@contextmanager
def held_file_lock(
    path: Path, refusal: Callable[[], str], *, holder: Path | None = None
) -> Iterator[None]:
    """Hold the file lock ``path`` for the block, without waiting: StoreLockedError with the
    message ``refusal()`` when another holder has it. With ``holder``, who holds it is
    recorded there (``record_holder``)."""
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise StoreLockedError(refusal()) from None
    try:
        if holder is not None:
            record_holder(holder)
        yield
    finally:
        lock.release()


@contextmanager
def writer_lock(locks: Path, name: str) -> Iterator[None]:
    """``Collections.writer`` on both stores: a file lock ``locks/NAME.writer``, with its
    holder recorded beside it in ``NAME.writer.holder``."""
    locks.mkdir(parents=True, exist_ok=True)
    path = locks / f"{name}.writer"
    holder = path.with_name(f"{path.name}.holder")

    def refusal() -> str:
        return (
            f"collection {name!r} is being written by another process{describe_holder(holder)}; "
            "try again once it has finished, or stop it"
        )

    with held_file_lock(path, refusal, holder=holder):
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                holder.unlink()


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
        """Dense and BM25 candidates fused inside Qdrant (``query.fusion``), best first."""
        ...

    def fetch(self, ids: Sequence[str]) -> list[tuple[Chunk, np.ndarray]]:
        """Stored chunks with their dense vectors, in the order asked; missing ids are left out."""
        ...

    def point_ids(self) -> set[str]:
        """Every point id in the collection (for checks that the store mirrors the folders)."""
        ...

    def source_chunks(self, source: str) -> list[Chunk]:
        """Every stored chunk of one file, in reading order."""
        ...

    def containing(self, text: str, *, source_prefix: str | None = None) -> list[Chunk]:
        """The stored chunks whose text holds ``text`` as written (case and all), under
        ``source_prefix`` when given. No index serves it: it reads every chunk's text, for
        look-ups that retrieval cannot make (a one-letter option such as "-O")."""
        ...

    def count(self, *, exact: bool = True) -> int:
        """Stored chunks; ``exact=False`` may estimate from index metadata, at a fraction of
        the cost of an exact count."""
        ...

    def word_counts(self, words: Sequence[str], *, up_to: int) -> dict[str, int]:
        """How many stored chunks contain each word, counted up to ``up_to``, as Qdrant's BM25
        tokenizer reads them (stemmed: 'folders' matches 'folder'). Stopwords are left out."""
        ...

    def flush(self) -> None:
        """Make every write so far durable on disk before returning. Ingestion calls it before
        it commits its state, so the state never records what the store could lose."""
        ...

    def build_index(self) -> bool:
        """Index the vectors written since the last call when there are enough of them to make
        searching them one by one slow, and drop deleted points once they are a large share of
        what holds them; True when it did either. A Qdrant server does this itself."""
        ...

    def close(self) -> None: ...

    def search_one(
        self, using: SingleVector, *, text: str, vector: np.ndarray | None, k: int
    ) -> list[Hit]:
        """Query one named vector, without fusion: ``dense`` (``vector`` is the query
        embedding) or ``bm25`` (``text`` is encoded; a text of stopwords only finds nothing).
        Scores are that vector's own (cosine, or BM25); ``similarity`` is the cosine for dense
        hits and 0 for BM25 hits."""
        ...

    def recommend(self, ids: Sequence[str], *, k: int, exclude_source: str | None) -> list[Hit]:
        """The ``k`` chunks nearest to the stored points ``ids`` (Qdrant's recommend query,
        best-score strategy, on their stored dense vectors), the ``ids`` themselves and the
        chunks of ``exclude_source`` left out; ``similarity`` is the best cosine."""
        ...

    def scan_vectors(
        self, *, fields: Sequence[str], batch: int = 1024
    ) -> Iterator[tuple[list[str], list[dict[str, Any]], np.ndarray]]:
        """Every point, a page at a time: its id, the payload ``fields`` asked for, and its
        dense vector (one row per point)."""
        ...


@lru_cache(maxsize=1)
def bm25_model() -> qdrant_edge.Bm25:
    """Qdrant's own BM25 tokenizer (English stemming and stopwords), used by both stores.

    Documents get term-frequency weights; the IDF modifier of the sparse vector supplies
    the inverse document frequency inside Qdrant at query time.
    """
    import qdrant_edge

    return qdrant_edge.Bm25(qdrant_edge.Bm25Config(language="english"))


def count_terms(
    words: Sequence[str], up_to: int, matches: Callable[[Any, int], int]
) -> dict[str, int]:
    """``word_counts`` from ``matches(sparse, limit)``, the number of chunks (at most
    ``limit``) that a BM25 query finds."""
    counts = {}
    for word in words:
        sparse = bm25_model().embed_query(word)
        if sparse.indices:  # a stopword has none
            counts[word] = matches(sparse, up_to)
    return counts


def bm25_terms(text: str) -> set[int]:
    """The BM25 term ids of a text: its words, stemmed, stopwords left out."""
    return set(bm25_model().embed_query(text).indices)


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
        "metadata": dict(chunk.metadata),
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
        metadata=tuple((str(k), str(v)) for k, v in (payload.get("metadata") or {}).items()),
    )


def dense_of(vector: object) -> np.ndarray:
    if isinstance(vector, dict):
        vector = vector.get(DENSE)
    return np.asarray(vector, dtype=np.float32)


def in_order(ids: Sequence[str], records: Iterable[Any]) -> list[tuple[Chunk, np.ndarray]]:
    """Retrieved records (with payload and dense vector) as chunks, in the order asked."""
    found = {str(r.id): (from_payload(r.id, r.payload or {}), dense_of(r.vector)) for r in records}
    return [found[i] for i in ids if i in found]


def scroll_all(page: Callable[[Any], tuple[Sequence[Any], Any]]) -> list[Any]:
    """Every record, scrolling page by page: ``page(offset)`` returns (records, next offset)."""
    found: list[Any] = []
    offset = None
    while True:
        records, offset = page(offset)
        found.extend(records)
        if offset is None:
            return found


def all_ids(page: Callable[[Any], tuple[Sequence[Any], Any]]) -> set[str]:
    return {str(r.id) for r in scroll_all(page)}


def in_reading_order(records: Iterable[Any]) -> list[Chunk]:
    """Records with payloads as chunks, ordered by where they start in their file."""
    chunks = (from_payload(r.id, r.payload or {}) for r in records)
    return sorted(chunks, key=lambda c: (c.start, c.end))


def cosine(query: np.ndarray, vector: object) -> float:
    """Both sides are unit length, so the dot product is the cosine similarity."""
    if isinstance(vector, dict):
        vector = vector.get(DENSE)
    if vector is None:
        return 0.0
    return float(np.dot(query, np.asarray(vector, dtype=np.float32)))


SingleVector = Literal["dense", "bm25"]
"""A named vector of the collection that ``VectorStore.search_one`` may query alone."""


def single_vector_query(using: SingleVector, text: str, vector: np.ndarray | None) -> Any:
    """What ``search_one`` asks Qdrant for: the dense vector as a list, or the text's BM25
    query; None when the text has no BM25 terms (only stopwords), which matches nothing."""
    if using == DENSE:
        if vector is None:
            raise ValueError("a dense search needs the query vector")
        return vector.tolist()
    if using != SPARSE:
        raise ValueError(f"search_one queries one vector, {DENSE!r} or {SPARSE!r}: not {using!r}")
    sparse = bm25_model().embed_query(text)
    return sparse if sparse.indices else None


def scanned_page(
    records: Sequence[Any], dimension: int
) -> tuple[list[str], list[dict[str, Any]], np.ndarray]:
    """``scan_vectors``' page from scrolled records with payloads and dense vectors."""
    if not records:
        return [], [], np.zeros((0, dimension), dtype=np.float32)
    vectors = np.stack([dense_of(r.vector) for r in records]).astype(np.float32, copy=False)
    return [str(r.id) for r in records], [dict(r.payload or {}) for r in records], vectors


def recommended_hits(points: Iterable[Any]) -> list[Hit]:
    """``recommend``'s hits: with the best-score strategy a point's score is its cosine to
    the closest example."""
    return [
        Hit(
            chunk=from_payload(p.id, p.payload or {}),
            score=float(p.score),
            similarity=float(p.score),
        )
        for p in points
    ]


def single_vector_hits(points: Iterable[Any], using: SingleVector) -> list[Hit]:
    """``search_one``'s hits from scored points with payloads."""
    return [
        Hit(
            chunk=from_payload(p.id, p.payload or {}),
            score=float(p.score),
            similarity=float(p.score) if using == DENSE else 0.0,
        )
        for p in points
    ]
