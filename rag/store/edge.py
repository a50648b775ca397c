"""Qdrant Edge: the real Qdrant engine in-process, one shard per collection under DATA_DIR."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe
from filelock import FileLock, Timeout

from rag.errors import CollectionNotFoundError, StoreError, StoreLockedError
from rag.store.base import (
    DENSE,
    INDEXED_FIELDS,
    SPARSE,
    CollectionInfo,
    SearchQuery,
    SingleVector,
    all_ids,
    bm25_model,
    cosine,
    count_terms,
    describe_holder,
    from_payload,
    held_file_lock,
    hnsw_ef,
    in_order,
    in_reading_order,
    normalize_prefix,
    recommended_hits,
    record_holder,
    scanned_page,
    scroll_all,
    single_vector_hits,
    single_vector_query,
    to_payload,
    writer_lock,
)
from rag.types import Chunk, Hit

log = logging.getLogger(__name__)

_INFO_FILE = "collection.json"
_LOCK_FILE = ".lock"
_HOLDER_FILE = ".lock.holder"  # who holds _LOCK_FILE, for the message others get
_SHARD_DIR = "shard"


def collections_root(data_dir: Path) -> Path:
    return data_dir / "collections"


class EdgeVectorStore:
    """One collection as one Edge shard. A file lock keeps other processes out with a message."""

    def __init__(self, data_dir: Path, collection: str, wanted: CollectionInfo, *, create: bool):
        self._name = collection
        self._dir = collections_root(data_dir) / collection
        info_path = self._dir / _INFO_FILE
        previous = self._dir.with_name(f"{collection}.old")
        if not self._dir.exists() and (previous / _INFO_FILE).is_file():
            previous.rename(self._dir)  # a swap died between its two renames: roll back
        if not info_path.is_file() and not create:
            raise CollectionNotFoundError(
                f"collection {collection!r} does not exist under {self._dir.parent}; "
                "ingest documents into it first (rag ingest PATH --collection NAME)"
            )
        self._dir.mkdir(parents=True, exist_ok=True)
        # Not thread-local: the service opens a collection on one thread and may close it on
        # another (a drop, a rebuild's switch), which must release the lock.
        self._lock = FileLock(self._dir / _LOCK_FILE, timeout=0, thread_local=False)
        try:
            self._lock.acquire()
        except Timeout:
            raise StoreLockedError(_locked_message(self._dir)) from None
        record_holder(self._dir / _HOLDER_FILE)
        self._closed = False
        try:
            self._info, self._shard = self._open(info_path, wanted)
        except BaseException:
            self._lock.release()
            raise

    def _open(self, info_path: Path, wanted: CollectionInfo) -> tuple[CollectionInfo, qe.EdgeShard]:
        shard_dir = self._dir / _SHARD_DIR
        if info_path.is_file():
            info = CollectionInfo.from_dict(json.loads(info_path.read_text()))
            info.check_compatible(wanted, self._name)
            try:
                return info, qe.EdgeShard.load(str(shard_dir))
            except Exception as exc:  # the engine raises a bare Exception
                if "WouldBlock" in str(exc):
                    raise StoreLockedError(_locked_message(self._dir)) from None
                raise StoreError(f"cannot open collection {self._name!r}: {exc}") from exc
        # A half-made shard from a crash during creation holds no data yet: start afresh.
        shutil.rmtree(shard_dir, ignore_errors=True)
        config = qe.EdgeConfig(
            vectors={
                DENSE: qe.EdgeVectorParams(size=wanted.dimension, distance=qe.Distance.Cosine)
            },
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )
        shard = qe.EdgeShard.create(str(shard_dir), config)
        for field in INDEXED_FIELDS:
            shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword))
        shard.flush()
        # Written last: its presence means the collection is complete.
        tmp = info_path.with_suffix(".tmp")
        tmp.write_text(wanted.to_json())
        tmp.replace(info_path)
        log.info("created collection %r at %s", self._name, self._dir)
        return wanted, shard

    @property
    def collection(self) -> str:
        return self._name

    @property
    def info(self) -> CollectionInfo:
        return self._info

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if not chunks:
            return
        bm25 = bm25_model()
        points = [
            qe.Point(
                chunk.id,
                {DENSE: vector.tolist(), SPARSE: bm25.embed_document(chunk.embedding_text)},
                to_payload(chunk),
            )
            for chunk, vector in zip(chunks, vectors, strict=True)
        ]
        self._shard.update(qe.UpdateOperation.upsert_points(points))

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._shard.update(qe.UpdateOperation.delete_points(list(ids)))

    def delete_source(self, source: str) -> None:
        self._shard.update(qe.UpdateOperation.delete_points_by_filter(_match("source", source)))

    def search(self, query: SearchQuery) -> list[Hit]:
        flt = None
        if query.source_prefix:
            flt = _match("path_prefixes", normalize_prefix(query.source_prefix))
        sparse = bm25_model().embed_query(query.text)
        prefetches = [
            qe.Prefetch(
                limit=query.prefetch_k,
                query=qe.Query.Nearest(query.vector.tolist(), using=DENSE),
                filter=flt,
                params=qe.SearchParams(hnsw_ef=hnsw_ef(query.prefetch_k)),
            )
        ]
        if sparse.indices:
            prefetches.append(
                qe.Prefetch(
                    limit=query.prefetch_k, query=qe.Query.Nearest(sparse, using=SPARSE), filter=flt
                )
            )
        fusion: Any = qe.Fusion.Dbsf() if query.fusion == "dbsf" else qe.Fusion.Rrf(k=query.rrf_k)
        points = self._shard.query(
            qe.QueryRequest(
                limit=query.k,
                prefetches=prefetches,
                query=fusion,
                filter=flt,
                with_payload=True,
                with_vector=[DENSE],
            )
        )
        return [
            Hit(
                chunk=from_payload(p.id, p.payload or {}),
                score=float(p.score),
                similarity=cosine(query.vector, p.vector),
            )
            for p in points
        ]

    def fetch(self, ids: Sequence[str]) -> list[tuple[Chunk, np.ndarray]]:
        if not ids:
            return []
        return in_order(
            ids, self._shard.retrieve(list(ids), with_payload=True, with_vector=[DENSE])
        )

    def point_ids(self) -> set[str]:
        return all_ids(
            lambda offset: self._shard.scroll(
                qe.ScrollRequest(offset=offset, limit=1000, with_payload=False, with_vector=False)
            )
        )

    def source_chunks(self, source: str) -> list[Chunk]:
        return in_reading_order(self._matching(_match("source", source)))

    def containing(self, text: str, *, source_prefix: str | None = None) -> list[Chunk]:
        conditions: list[Any] = [qe.FieldCondition("text", match=qe.MatchSubstring(text))]
        if source_prefix:
            conditions.append(_match("path_prefixes", normalize_prefix(source_prefix)))
        return [
            from_payload(p.id, p.payload or {}) for p in self._matching(qe.Filter(must=conditions))
        ]

    def _matching(self, flt: qe.Filter) -> list[Any]:
        """Every point that ``flt`` matches, with its payload, page by page."""
        return scroll_all(
            lambda offset: self._shard.scroll(
                qe.ScrollRequest(
                    offset=offset, limit=256, filter=flt, with_payload=True, with_vector=False
                )
            )
        )

    def count(self, *, exact: bool = True) -> int:
        return int(self._shard.count(qe.CountRequest(exact=exact)))

    def word_counts(self, words: Sequence[str], *, up_to: int) -> dict[str, int]:
        def matches(sparse: Any, limit: int) -> int:
            request = qe.QueryRequest(
                limit=limit, query=qe.Query.Nearest(sparse, using=SPARSE), with_payload=False
            )
            return len(self._shard.query(request))

        return count_terms(words, up_to, matches)

    def flush(self) -> None:
        self._shard.flush()

    def build_index(self) -> bool:
        # Qdrant Edge never optimizes by itself. Its optimizers decide by Qdrant's own per-segment
        # thresholds: a segment of unindexed vectors over 10 MB gets an HNSW index (below it,
        # reading every vector costs less than indexing after each edit), one whose deleted
        # points are a fifth of it is vacuumed. Nothing to do takes no time.
        started = time.perf_counter()
        done = bool(self._shard.optimize())
        if done:
            info = self._shard.info()
            log.info(
                "optimized %r: %d points, %d indexed vectors, %d segments, in %.1fs",
                self._name,
                info.points_count,
                info.indexed_vectors_count,
                info.segments_count,
                time.perf_counter() - started,
            )
        return done

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._shard.flush()
            self._shard.close()
        finally:
            self._lock.release()

    def search_one(
        self, using: SingleVector, *, text: str, vector: np.ndarray | None, k: int
    ) -> list[Hit]:
        query = single_vector_query(using, text, vector)
        if query is None:
            return []
        params = qe.SearchParams(hnsw_ef=hnsw_ef(k)) if using == DENSE else None
        points = self._shard.query(
            qe.QueryRequest(
                limit=k,
                query=qe.Query.Nearest(query, using=using),
                with_payload=True,
                params=params,
            )
        )
        return single_vector_hits(points, using)

    def recommend(self, ids: Sequence[str], *, k: int, exclude_source: str | None) -> list[Hit]:
        # Edge is a single shard without point-id lookups in queries: the examples are given
        # as their stored vectors, read from the shard.
        examples = [vector.tolist() for _, vector in self.fetch(ids)]
        if not examples:
            return []
        excluded: list[Any] = [qe.HasIdCondition(set(ids))]
        if exclude_source is not None:
            excluded.append(qe.FieldCondition("source", match=qe.MatchValue(exclude_source)))
        points = self._shard.query(
            qe.QueryRequest(
                limit=k,
                query=qe.Query.RecommendBestScore(qe.RecommendQuery(examples, []), using=DENSE),
                filter=qe.Filter(must_not=excluded),
                with_payload=True,
                params=qe.SearchParams(hnsw_ef=hnsw_ef(k)),
            )
        )
        return recommended_hits(points)

    def scan_vectors(
        self, *, fields: Sequence[str], batch: int = 1024
    ) -> Iterator[tuple[list[str], list[dict[str, Any]], np.ndarray]]:
        offset = None
        while True:
            records, offset = self._shard.scroll(
                qe.ScrollRequest(
                    offset=offset,
                    limit=batch,
                    with_payload=qe.PayloadSelector.Include(list(fields)),
                    with_vector=[DENSE],
                )
            )
            yield scanned_page(records, self._info.dimension)
            if offset is None:
                return


class EdgeCollections:
    """The collections under DATA_DIR/collections, one folder each. A collection's folder
    lock (the one an open EdgeVectorStore holds) keeps other processes out of it."""

    exclusive = True

    def __init__(self, data_dir: Path) -> None:
        self._root = collections_root(data_dir)
        self._data_dir = data_dir

    def open(self, name: str, info: CollectionInfo, *, create: bool = False) -> EdgeVectorStore:
        return EdgeVectorStore(self._data_dir, name, info, create=create)

    def list(self) -> list[str]:
        if not self._root.is_dir():
            return []
        # Names with a dot are internal (a reindex under way); user names cannot have one.
        return sorted(
            p.name for p in self._root.iterdir() if (p / _INFO_FILE).is_file() and "." not in p.name
        )

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the collection's folder lock; StoreLockedError if another holder has it."""
        folder = self._root / name
        folder.mkdir(parents=True, exist_ok=True)
        refusal = partial(_locked_message, folder)
        with held_file_lock(folder / _LOCK_FILE, refusal, holder=folder / _HOLDER_FILE):
            yield

    def writer(self, name: str) -> AbstractContextManager[None]:
        """The writer lock DATA_DIR/locks/NAME.writer: outside the collection's folder, which
        an open store holds and a rebuild replaces."""
        return writer_lock(self._data_dir / "locks", name)

    def drop(self, name: str) -> None:
        folder = self._root / name
        if not (folder / _INFO_FILE).is_file():
            raise CollectionNotFoundError(f"collection {name!r} does not exist")
        with self.lock(name):
            (folder / _INFO_FILE).unlink()
            shutil.rmtree(folder / _SHARD_DIR, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)

    def staging_name(self, name: str) -> str:
        """Where a rebuild of ``name`` is built; one left by an interrupted rebuild is dropped."""
        built = f"{name}.reindex"
        with contextlib.suppress(CollectionNotFoundError):
            self.drop(built)
        return built

    def swap(self, name: str, built: str) -> None:
        """Replace collection ``name`` by the finished collection ``built`` (both closed).

        Two renames; if a crash falls between them, opening ``name`` puts the old one back.
        """
        current, trash = self._root / name, self._root / f"{name}.old"
        shutil.rmtree(trash, ignore_errors=True)
        if current.exists():
            current.rename(trash)
        (self._root / built).rename(current)
        shutil.rmtree(trash, ignore_errors=True)


def _match(key: str, value: str) -> qe.Filter:
    return qe.Filter(must=[qe.FieldCondition(key, match=qe.MatchValue(value))])


def _locked_message(folder: Path) -> str:
    return (
        f"collection {folder.name!r}: the embedded store at {folder} is open in another "
        f"process{describe_holder(folder / _HOLDER_FILE)} (only one process at a "
        "time may open it). Stop that process (for example a running `rag serve` or "
        "`rag ingest`) and try again, send your request to that server's API instead, or run a "
        "Qdrant server and set RAG_STORE=qdrant."
    )
