"""A Qdrant server through qdrant-client (or qdrant-client's local mode, for tests)."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from rag.config import Settings
from rag.errors import CollectionNotFoundError, StoreError
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
    from_payload,
    held_file_lock,
    hnsw_ef,
    in_order,
    in_reading_order,
    normalize_prefix,
    recommended_hits,
    scanned_page,
    scroll_all,
    single_vector_hits,
    single_vector_query,
    to_payload,
    writer_lock,
)
from rag.types import Chunk, Hit

log = logging.getLogger(__name__)

_INFO_KEY = "rag"


def make_client(url: str, api_key: str | None) -> QdrantClient:
    """A URL talks to a server; ':memory:' or a folder path runs qdrant-client's local mode."""
    if url == ":memory:":
        return QdrantClient(location=":memory:")
    if "://" not in url:
        return QdrantClient(path=url)
    return QdrantClient(url=url, api_key=api_key)


def _sparse(vector: object) -> models.SparseVector:
    return models.SparseVector(
        indices=list(vector.indices),  # type: ignore[attr-defined]
        values=list(vector.values),  # type: ignore[attr-defined]
    )


class QdrantServerStore:
    """One collection on a Qdrant server; the schema and payloads match EdgeVectorStore."""

    def __init__(
        self, client: QdrantClient, collection: str, wanted: CollectionInfo, *, create: bool
    ) -> None:
        self._client = client
        self._name = collection
        try:
            exists = client.collection_exists(collection)
            if exists:
                self._info = self._read_info()
                self._info.check_compatible(wanted, collection)
            elif create:
                self._create(wanted)
                self._info = wanted
            else:
                raise CollectionNotFoundError(
                    f"collection {collection!r} does not exist on the Qdrant server; ingest "
                    "documents into it first (rag ingest PATH --collection NAME)"
                )
        except StoreError:
            raise
        except Exception as exc:  # connection refused, auth, ...: say where we tried
            raise StoreError(f"Qdrant server error on collection {collection!r}: {exc}") from exc

    def _read_info(self) -> CollectionInfo:
        metadata = self._client.get_collection(self._name).config.metadata or {}
        if _INFO_KEY not in metadata:
            raise StoreError(
                f"collection {self._name!r} exists but was not created by rag "
                "(no embedding model recorded); choose another collection name"
            )
        return CollectionInfo.from_dict(metadata[_INFO_KEY])

    def _create(self, info: CollectionInfo) -> None:
        """A physical collection `NAME.vSTAMP` behind the alias NAME, so that a reindex can
        build a new one and move the alias to it in one atomic step. Internal names (with a
        dot, which user names cannot have) are created as they are."""
        physical = self._name if "." in self._name else versioned(self._name)
        self._client.create_collection(
            physical,
            vectors_config={
                DENSE: models.VectorParams(size=info.dimension, distance=models.Distance.COSINE)
            },
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            metadata={_INFO_KEY: {**info.__dict__}},
        )
        with warnings.catch_warnings():
            # qdrant-client's local mode warns that it ignores payload indexes; servers use them.
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
            for field in INDEXED_FIELDS:
                self._client.create_payload_index(
                    physical, field, field_schema=models.PayloadSchemaType.KEYWORD
                )
        if physical != self._name:
            self._client.update_collection_aliases(
                change_aliases_operations=[_create_alias(self._name, physical)]
            )
        log.info("created collection %r (%s) on the Qdrant server", self._name, physical)

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
            models.PointStruct(
                id=chunk.id,
                vector={
                    DENSE: vector.tolist(),
                    SPARSE: _sparse(bm25.embed_document(chunk.embedding_text)),
                },
                payload=to_payload(chunk),
            )
            for chunk, vector in zip(chunks, vectors, strict=True)
        ]
        self._client.upsert(self._name, points=points, wait=True)

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._client.delete(
                self._name, points_selector=models.PointIdsList(points=list(ids)), wait=True
            )

    def delete_source(self, source: str) -> None:
        self._client.delete(
            self._name,
            points_selector=models.FilterSelector(filter=_match("source", source)),
            wait=True,
        )

    def search(self, query: SearchQuery) -> list[Hit]:
        flt = None
        if query.source_prefix:
            flt = _match("path_prefixes", normalize_prefix(query.source_prefix))
        sparse = bm25_model().embed_query(query.text)
        prefetch = [
            models.Prefetch(
                query=query.vector.tolist(),
                using=DENSE,
                limit=query.prefetch_k,
                filter=flt,
                params=models.SearchParams(hnsw_ef=hnsw_ef(query.prefetch_k)),
            )
        ]
        if sparse.indices:
            prefetch.append(
                models.Prefetch(
                    query=_sparse(sparse), using=SPARSE, limit=query.prefetch_k, filter=flt
                )
            )
        result = self._client.query_points(
            self._name,
            prefetch=prefetch,
            query=(
                models.FusionQuery(fusion=models.Fusion.DBSF)
                if query.fusion == "dbsf"
                else models.RrfQuery(rrf=models.Rrf(k=query.rrf_k))
            ),
            query_filter=flt,
            limit=query.k,
            with_payload=True,
            with_vectors=[DENSE],
        )
        return [
            Hit(
                chunk=from_payload(p.id, p.payload or {}),
                score=float(p.score),
                similarity=cosine(query.vector, p.vector),
            )
            for p in result.points
        ]

    def fetch(self, ids: Sequence[str]) -> list[tuple[Chunk, np.ndarray]]:
        if not ids:
            return []
        records = self._client.retrieve(
            self._name, ids=list(ids), with_payload=True, with_vectors=[DENSE]
        )
        return in_order(ids, records)

    def point_ids(self) -> set[str]:
        return all_ids(
            lambda offset: self._client.scroll(
                self._name, offset=offset, limit=1000, with_payload=False, with_vectors=False
            )
        )

    def source_chunks(self, source: str) -> list[Chunk]:
        return in_reading_order(self._matching(_match("source", source)))

    def containing(self, text: str, *, source_prefix: str | None = None) -> list[Chunk]:
        conditions: list[models.Condition] = [
            models.FieldCondition(key="text", match=models.MatchSubstring(substring=text))
        ]
        if source_prefix:
            conditions.append(_match("path_prefixes", normalize_prefix(source_prefix)))
        return [
            from_payload(p.id, p.payload or {})
            for p in self._matching(models.Filter(must=conditions))
        ]

    def _matching(self, flt: models.Filter) -> list[Any]:
        """Every point that ``flt`` matches, with its payload, page by page."""
        return scroll_all(
            lambda offset: self._client.scroll(
                self._name,
                scroll_filter=flt,
                offset=offset,
                limit=256,
                with_payload=True,
                with_vectors=False,
            )
        )

    def count(self, *, exact: bool = True) -> int:
        return int(self._client.count(self._name, exact=exact).count)

    def word_counts(self, words: Sequence[str], *, up_to: int) -> dict[str, int]:
        def matches(sparse: Any, limit: int) -> int:
            result = self._client.query_points(
                self._name, query=_sparse(sparse), using=SPARSE, limit=limit, with_payload=False
            )
            return len(result.points)

        return count_terms(words, up_to, matches)

    def flush(self) -> None:
        """Nothing to do: every write waits for the server to apply it (``wait=True``), and
        the server keeps its own write-ahead log."""

    def build_index(self) -> bool:
        return False  # the server's own optimizer indexes in the background

    def close(self) -> None:
        self._client.close()

    def search_one(
        self, using: SingleVector, *, text: str, vector: np.ndarray | None, k: int
    ) -> list[Hit]:
        query = single_vector_query(using, text, vector)
        if query is None:
            return []
        if using == SPARSE:
            query = _sparse(query)
        params = models.SearchParams(hnsw_ef=hnsw_ef(k)) if using == DENSE else None
        result = self._client.query_points(
            self._name, query=query, using=using, limit=k, with_payload=True, search_params=params
        )
        return single_vector_hits(result.points, using)

    def recommend(self, ids: Sequence[str], *, k: int, exclude_source: str | None) -> list[Hit]:
        if not ids:
            return []
        excluded: list[Any] = [models.HasIdCondition(has_id=list(ids))]
        if exclude_source is not None:
            excluded.append(
                models.FieldCondition(key="source", match=models.MatchValue(value=exclude_source))
            )
        # The server looks the examples' vectors up by id itself.
        result = self._client.query_points(
            self._name,
            query=models.RecommendQuery(
                recommend=models.RecommendInput(
                    positive=list(ids), strategy=models.RecommendStrategy.BEST_SCORE
                )
            ),
            using=DENSE,
            query_filter=models.Filter(must_not=excluded),
            limit=k,
            with_payload=True,
            search_params=models.SearchParams(hnsw_ef=hnsw_ef(k)),
        )
        return recommended_hits(result.points)

    def scan_vectors(
        self, *, fields: Sequence[str], batch: int = 1024
    ) -> Iterator[tuple[list[str], list[dict[str, Any]], np.ndarray]]:
        offset = None
        while True:
            records, offset = self._client.scroll(
                self._name,
                offset=offset,
                limit=batch,
                with_payload=list(fields),
                with_vectors=[DENSE],
            )
            yield scanned_page(records, self._info.dimension)
            if offset is None:
                return


def _match(key: str, value: str) -> models.Filter:
    return models.Filter(
        must=[models.FieldCondition(key=key, match=models.MatchValue(value=value))]
    )


def client_for(settings: Settings) -> QdrantClient:
    assert settings.qdrant_url is not None  # Settings refuses store='qdrant' without a URL
    key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    return make_client(settings.qdrant_url, key)


def versioned(name: str) -> str:
    return f"{name}.v{time.time_ns()}"


def _create_alias(alias: str, collection: str) -> models.CreateAliasOperation:
    return models.CreateAliasOperation(
        create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)
    )


def _delete_alias(alias: str) -> models.DeleteAliasOperation:
    return models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))


def _aliases(client: QdrantClient) -> dict[str, str]:
    return {a.alias_name: a.collection_name for a in client.get_aliases().aliases}


class ServerCollections:
    """The rag collections on a Qdrant server. User-facing names are aliases of physical
    collections ``NAME.vSTAMP``, so that a rebuild can replace one atomically.

    Collection locks, and the writer locks, are file locks under DATA_DIR/locks: the processes
    that share a server collection share DATA_DIR too (the ingestion state lives there)."""

    exclusive = False

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._locks = settings.data_dir / "locks"

    def open(self, name: str, info: CollectionInfo, *, create: bool = False) -> QdrantServerStore:
        return QdrantServerStore(client_for(self._settings), name, info, create=create)

    @contextmanager
    def _client(self) -> Iterator[QdrantClient]:
        client = client_for(self._settings)
        try:
            yield client
        finally:
            client.close()

    def list(self) -> list[str]:
        """Aliases, and rag collections made before aliases (no dot)."""
        with self._client() as client:
            physical = [c.name for c in client.get_collections().collections]
            names = set(_aliases(client)) | {n for n in physical if "." not in n}
            return sorted(
                n for n in names if _INFO_KEY in (client.get_collection(n).config.metadata or {})
            )

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the collection's lock; StoreLockedError if another holder has it."""
        self._locks.mkdir(parents=True, exist_ok=True)
        path = self._locks / f"{name}.lock"
        with held_file_lock(
            path, lambda: f"collection {name!r} is locked by another process (lock file {path})"
        ):
            yield

    def writer(self, name: str) -> AbstractContextManager[None]:
        """The writer lock DATA_DIR/locks/NAME.writer (see the class docstring)."""
        return writer_lock(self._locks, name)

    def drop(self, name: str) -> None:
        with self.lock(name), self._client() as client:
            if not client.collection_exists(name):
                raise CollectionNotFoundError(f"collection {name!r} does not exist")
            target = _aliases(client).get(name)
            if target is not None:
                client.update_collection_aliases(change_aliases_operations=[_delete_alias(name)])
            client.delete_collection(target or name)

    def staging_name(self, name: str) -> str:
        """A new physical collection for a rebuild of ``name``."""
        return versioned(name)

    def swap(self, name: str, built: str) -> None:
        """Point the alias ``name`` at the collection ``built`` atomically, then drop the old
        one.

        A collection made before aliases (a physical ``name``) is dropped first: for that one
        switch there is a moment with no collection.
        """
        with self._client() as client:
            old = _aliases(client).get(name)
            operations: list[Any] = [_create_alias(name, built)]
            if old is not None:
                operations.insert(0, _delete_alias(name))
            elif client.collection_exists(name):
                client.delete_collection(name)
            client.update_collection_aliases(change_aliases_operations=operations)
            if old is not None and old != built:
                client.delete_collection(old)
