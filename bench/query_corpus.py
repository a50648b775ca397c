"""The benchmark collection for bench_query.py: real chunks from this machine's collections,
topped up with labelled synthetic chunks, written through the product's own store API.

Embedding a large collection here would take hours, so the real part is read, vectors
included, from collections the product already built (the data dirs given as sources; with
none, some documents of a BEIR corpus are embedded instead). What is missing to reach the
wanted size is made from real chunks: the text, title and headings of one real chunk (so its
BM25 vector is a real chunk's), a dense vector that mixes that chunk's vector (60-90 %) with a
random other real one, then renormalized (so it lies near real data, not at random points of
the sphere), and a source under ``synthetic/COPY/...``, which keeps the real documents' chunk
counts and folder layout for the path-prefix index. Every chunk goes through
``VectorStore.upsert``, which computes the BM25 vector and the payload exactly as ingestion
does.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from rag.catalog import drop_collection, list_collections, open_collection
from rag.config import Settings
from rag.embedding import Embedder
from rag.errors import CollectionNotFoundError, RagError
from rag.types import Chunk

# Ids of synthetic chunks: stable across builds, never equal to a real chunk's id.
_SYNTHETIC_NS = uuid.UUID("6f1d3a52-2b1e-4c55-9a43-9d1f0c7e5b21")
_READ_BATCH = 1000


@dataclass(frozen=True)
class Manifest:
    """Written beside the collection once it is complete; a build is reused only if it
    matches the size and seed asked for."""

    collection: str
    size: int
    seed: int
    real: dict[str, int] = field(default_factory=dict)
    synthetic: int = 0
    build_seconds: float = 0.0
    optimize_seconds: float | None = None
    """Set on the copy made by ``optimized_copy`` when its ``build_index()`` built an index."""

    @property
    def real_total(self) -> int:
        return sum(self.real.values())


@dataclass
class RealChunks:
    """Chunks and their unit-length dense vectors, with where each group came from."""

    chunks: list[Chunk] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    origin: dict[str, int] = field(default_factory=dict)

    def add(self, label: str, rows: Sequence[tuple[Chunk, np.ndarray]]) -> None:
        for chunk, vector in rows:
            self.chunks.append(chunk)
            self.vectors.append(vector)
        self.origin[label] = self.origin.get(label, 0) + len(rows)


@functools.cache
def model_cache() -> Path:
    """The converted model cache of the current settings (RAG_MODEL_CACHE_DIR, else
    DATA_DIR/models), shared by every data dir here: a fresh one must not convert again."""
    return Settings().models_dir.resolve()


def settings_for(data_dir: Path, collection: str = "default") -> Settings:
    return Settings(data_dir=data_dir, collection=collection, model_cache_dir=model_cache())


def manifest_path(data_dir: Path, collection: str) -> Path:
    return data_dir / f"{collection}.manifest.json"


def read_manifest(data_dir: Path, collection: str) -> Manifest | None:
    path = manifest_path(data_dir, collection)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return Manifest(**data)


def read_real(sources: Sequence[Path], embedder: Embedder) -> RealChunks:
    """Every chunk of every collection under ``sources``, with its stored dense vector."""
    real = RealChunks()
    for data_dir in sources:
        settings = settings_for(data_dir)
        for name in list_collections(settings):
            label = f"{data_dir}:{name}"
            try:
                store = open_collection(settings, embedder, collection=name)
            except RagError as exc:  # locked by another process, or another embedding model
                print(f"  skipping {label}: {exc}", file=sys.stderr)
                continue
            try:
                ids = sorted(store.point_ids())  # sorted: the same order on every build
                for start in range(0, len(ids), _READ_BATCH):
                    real.add(label, store.fetch(ids[start : start + _READ_BATCH]))
            finally:
                store.close()
            print(f"  read {real.origin.get(label, 0):,} chunks from {label}", file=sys.stderr)
    return real


def embed_fallback(embedder: Embedder, corpus: Path, count: int) -> RealChunks:
    """No product collection among the sources: embed the first ``count`` documents of a BEIR
    ``corpus.jsonl`` (``_id``, ``title``, ``text``), one chunk each (slow)."""
    real = RealChunks()
    chunks: list[Chunk] = []
    with corpus.open() as lines:
        for line in lines:
            if len(chunks) >= count:
                break
            doc = json.loads(line)
            text = str(doc["text"])[:1000]  # about what the model reads (256 tokens)
            title = str(doc.get("title", ""))
            chunks.append(
                Chunk(
                    id=str(uuid.uuid5(_SYNTHETIC_NS, f"{corpus.parent.name}/{doc['_id']}")),
                    source=f"{corpus.parent.name}/{doc['_id']}",
                    title=title,
                    text=text,
                    end=len(text),
                    context=title,
                )
            )
    print(f"  embedding {len(chunks):,} documents of {corpus} (fallback)", file=sys.stderr)
    vectors = embedder.embed_documents([c.embedding_text for c in chunks])
    real.add(str(corpus), list(zip(chunks, vectors, strict=True)))
    return real


def synthetic_batches(
    real: RealChunks, count: int, rng: np.random.Generator, batch: int
) -> Iterator[tuple[list[Chunk], np.ndarray]]:
    """``count`` synthetic chunks derived from the real ones (see the module docstring)."""
    n = len(real.chunks)
    matrix = np.stack(real.vectors).astype(np.float32)
    order = rng.permutation(n)
    for start in range(0, count, batch):
        positions = np.arange(start, min(count, start + batch))
        own = order[positions % n]
        other = rng.integers(0, n, size=len(positions))
        weight = rng.uniform(0.6, 0.9, size=(len(positions), 1)).astype(np.float32)
        mixed = weight * matrix[own] + (1 - weight) * matrix[other]
        mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
        chunks = []
        for position, index in zip(positions, own, strict=True):
            base = real.chunks[index]
            copy = int(position) // n + 1
            chunks.append(
                Chunk(
                    id=str(uuid.uuid5(_SYNTHETIC_NS, f"{copy}/{base.id}")),
                    source=f"synthetic/{copy}/{base.source.lstrip('/')}",
                    title=base.title,
                    text=base.text,
                    heading_path=base.heading_path,
                    page=base.page,
                    start=base.start,
                    end=base.end,
                    context=base.context,
                )
            )
        yield chunks, mixed


def build_collection(
    data_dir: Path,
    collection: str,
    embedder: Embedder,
    *,
    size: int,
    seed: int,
    sources: Sequence[Path],
    fallback_corpus: Path | None,
    fallback_real: int,
) -> Manifest:
    """Build ``collection`` under ``data_dir`` with ``size`` chunks, or reuse a finished one."""
    settings = settings_for(data_dir, collection)
    found = read_manifest(data_dir, collection)
    if found is not None and (found.size, found.seed) == (size, seed):
        return found
    manifest_path(data_dir, collection).unlink(missing_ok=True)
    with contextlib.suppress(CollectionNotFoundError):
        drop_collection(settings, collection)  # a build that died half way, or another size
    started = time.perf_counter()
    real = read_real(sources, embedder)
    if not real.chunks:
        if fallback_corpus is None:
            raise SystemExit(
                "no chunks to build from: give data dirs with product collections (--source) "
                "or a BEIR corpus.jsonl to embed (--fallback-corpus)"
            )
        real = embed_fallback(embedder, fallback_corpus, fallback_real)
    rng = np.random.default_rng(seed)
    batch = settings.ingest_batch_chunks
    store = open_collection(settings, embedder, create=True)
    try:
        if len(real.chunks) >= size:
            # Enough real chunks: a random sample of them, nothing synthetic.
            keep = np.sort(rng.choice(len(real.chunks), size=size, replace=False))
            origin: dict[str, int] = {}
            labels = [label for label, n in real.origin.items() for _ in range(n)]
            for start in range(0, size, batch):
                picked = keep[start : start + batch]
                store.upsert(
                    [real.chunks[i] for i in picked], np.stack([real.vectors[i] for i in picked])
                )
                for i in picked:
                    origin[labels[i]] = origin.get(labels[i], 0) + 1
            synthetic = 0
        else:
            for start in range(0, len(real.chunks), batch):
                store.upsert(
                    real.chunks[start : start + batch],
                    np.stack(real.vectors[start : start + batch]),
                )
            origin = dict(real.origin)
            synthetic = size - len(real.chunks)
            for chunks, vectors in synthetic_batches(real, synthetic, rng, batch):
                store.upsert(chunks, vectors)
        count = store.count()
    finally:
        store.close()
    if count != size:
        raise SystemExit(f"built {count:,} chunks instead of {size:,}: ids collided?")
    manifest = Manifest(
        collection=collection,
        size=size,
        seed=seed,
        real=origin,
        synthetic=synthetic,
        build_seconds=round(time.perf_counter() - started, 1),
    )
    # Written last: its presence means the collection is complete.
    manifest_path(data_dir, collection).write_text(json.dumps(asdict(manifest), indent=2))
    return manifest


def optimized_copy(data_dir: Path, built: Manifest, embedder: Embedder) -> Manifest:
    """A copy of ``built`` after the store's ``build_index()``, as ``rag ingest`` runs it
    (HNSW index for the dense vectors). The collection built by ``build_collection`` has none:
    it is written by upserts alone, so the two show what the index changes. Below the
    store's indexing threshold ``build_index()`` does nothing, as after an ingestion."""
    name = f"{built.collection}-optimized"
    found = read_manifest(data_dir, name)
    if found is not None and (found.size, found.seed) == (built.size, built.seed):
        return found
    manifest_path(data_dir, name).unlink(missing_ok=True)
    with contextlib.suppress(CollectionNotFoundError):
        drop_collection(settings_for(data_dir, name), name)
    source = open_collection(settings_for(data_dir, built.collection), embedder)
    target = open_collection(settings_for(data_dir, name), embedder, create=True)
    try:
        ids = sorted(source.point_ids())
        batch = settings_for(data_dir, name).ingest_batch_chunks
        for start in range(0, len(ids), batch):
            rows = source.fetch(ids[start : start + batch])
            target.upsert([c for c, _ in rows], np.stack([v for _, v in rows]))
        started = time.perf_counter()
        indexed = target.build_index()
        seconds = round(time.perf_counter() - started, 1) if indexed else None
    finally:
        target.close()
        source.close()
    if not indexed:
        print(f"  {name}: below the indexing threshold, left unindexed", file=sys.stderr)
    manifest = replace(built, collection=name, optimize_seconds=seconds)
    manifest_path(data_dir, name).write_text(json.dumps(asdict(manifest), indent=2))
    return manifest
