"""The benchmark collection for bench_query.py: real chunks from this machine's collections,
topped up with labelled synthetic chunks, written through the product's own store API.

Embedding 100,000 chunks here would take about two hours (~14 chunks/s on 2 cores), so the
real part is read, vectors included, from collections the product already built (Python 3.11,
PostgreSQL 15 and SciFact docs). What is missing to reach the wanted size is made from real
chunks: the text, title and headings of one real chunk (so its BM25 vector is a real chunk's),
a dense vector that mixes that chunk's vector (60-90 %) with a random other real one, then
renormalized (so it lies near real data, not at random points of the sphere), and a source
under ``synthetic/COPY/...``, which keeps the real documents' chunk counts and folder layout
for the path-prefix index. Every chunk goes through ``VectorStore.upsert``, which computes the
BM25 vector and the payload exactly as ingestion does.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.embedding import Embedder
from rag.errors import CollectionNotFoundError, RagError
from rag.runtime import open_collection
from rag.services import drop_collection, list_collections
from rag.store.edge import collections_root
from rag.types import Chunk

PROJECT = Path(__file__).resolve().parent.parent
MODELS = PROJECT / "data" / "models"
DEFAULT_SOURCES = (Path("/tmp/pydata"), Path("/tmp/pg/data"), Path("/tmp/scifact-data"))
SCIFACT_CORPUS = PROJECT.parent / "shared" / "data" / "scifact" / "corpus.jsonl"
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
    """Set on the copy made by ``optimized_copy``: not what the product builds."""

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


def settings_for(data_dir: Path, collection: str = "default") -> Settings:
    # The converted model cache is shared: a fresh data dir must not convert models again.
    return Settings(data_dir=data_dir, collection=collection, model_cache_dir=MODELS)


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


def embed_fallback(embedder: Embedder, count: int) -> RealChunks:
    """No product collections on this machine: embed SciFact abstracts (slow, ~14 chunks/s)."""
    real = RealChunks()
    chunks: list[Chunk] = []
    with SCIFACT_CORPUS.open() as lines:
        for line in lines:
            if len(chunks) >= count:
                break
            doc = json.loads(line)
            text = str(doc["text"])[:1000]  # about what the model reads (256 tokens)
            title = str(doc.get("title", ""))
            chunks.append(
                Chunk(
                    id=str(uuid.uuid5(_SYNTHETIC_NS, f"scifact/{doc['_id']}")),
                    source=f"scifact/{doc['_id']}",
                    title=title,
                    text=text,
                    end=len(text),
                    context=title,
                )
            )
    print(f"  embedding {len(chunks):,} SciFact abstracts (fallback)", file=sys.stderr)
    vectors = embedder.embed_documents([c.embedding_text for c in chunks])
    real.add(str(SCIFACT_CORPUS), list(zip(chunks, vectors, strict=True)))
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
        real = embed_fallback(embedder, fallback_real)
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
    """A copy of ``built`` after Qdrant Edge's segment optimizer ran on it (HNSW index for the
    dense vectors, immutable BM25 index). The product never runs it: Edge optimizes only when
    asked, so a product collection stays one appendable segment searched by brute force. The
    copy shows what that costs; it is reached through the store's private shard handle."""
    name = f"{built.collection}-optimized"
    found = read_manifest(data_dir, name)
    if found is not None and (found.size, found.seed) == (built.size, built.seed):
        return found
    manifest_path(data_dir, name).unlink(missing_ok=True)
    root = collections_root(data_dir)
    shutil.rmtree(root / name, ignore_errors=True)
    shutil.copytree(root / built.collection, root / name, ignore=shutil.ignore_patterns(".lock"))
    store = open_collection(settings_for(data_dir, name), embedder)
    try:
        started = time.perf_counter()
        store._shard.optimize()  # type: ignore[attr-defined]  # no public API: see docstring
        seconds = round(time.perf_counter() - started, 1)
    finally:
        store.close()
    manifest = replace(built, collection=name, optimize_seconds=seconds)
    manifest_path(data_dir, name).write_text(json.dumps(asdict(manifest), indent=2))
    return manifest
