"""Time of the embedding map job (rag.explore.maps.build_map) on a synthetic collection.

    python bench/bench_map.py [--chunks 100000] [--dir DIR] [--json]

Writes ``--chunks`` chunks with synthetic unit vectors (384 dimensions, twenty chunks per
document, each document about one of 40 topics whose vectors lie around a centre, as a
sentence-embedding model's vectors cluster by topic) into a Qdrant Edge collection under
``--dir`` (a temporary folder by default; an existing collection there is reused), then builds
its map with the default settings: read every vector, fit PCA and k-means on a sample, place
every chunk, lay them out in 2-D (t-SNE on a sample, the rest placed into it), label the
clusters, find the outlying documents. Prints the time of each phase, the total, and the
process's peak resident memory (the collection is written by a child process, so the peak is
the map job's, with the open store's). Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag.chunking import chunk_id
from rag.config import Settings
from rag.explore.maps import build_map
from rag.store.base import CollectionInfo
from rag.store.factory import open_store
from rag.types import Chunk

DIMENSION = 384
TOPICS = 40
WORDS = "alpha beta gamma delta lantern harbour engine signal copper meadow".split()


def fill(settings: Settings, chunks: int) -> float:
    """Write the synthetic collection; the seconds it took."""
    info = CollectionInfo("synthetic", DIMENSION)
    store = open_store(settings, info, collection="bench_map", create=True)
    started = time.perf_counter()
    try:
        rng = np.random.default_rng(1)
        centres = rng.normal(size=(TOPICS, DIMENSION)).astype(np.float32)
        for start in range(store.count(), chunks, 2000):
            n = min(2000, chunks - start)
            numbers = np.arange(start, start + n)
            topic = (numbers // 20) % TOPICS
            vectors = centres[topic] + 0.8 * rng.normal(size=(n, DIMENSION)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            batch = []
            for number, t in zip(numbers.tolist(), topic.tolist(), strict=True):
                source = f"/synthetic/topic{t}/doc{number // 20}.txt"
                text = f"{WORDS[t % 10]} {WORDS[(t // 10) % 10]} passage {number}"
                batch.append(
                    Chunk(id=chunk_id(source, text, number), source=source, title=source, text=text)
                )
            store.upsert(batch, vectors)
        store.flush()
        store.build_index()
    finally:
        store.close()
    return time.perf_counter() - started


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes there, KiB here


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench-map-"))
    settings = Settings(data_dir=folder)
    # Written in a child process, so this one's peak memory is the map job's alone.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        fill_seconds = pool.apply(fill, (settings, args.chunks))
    store = open_store(settings, CollectionInfo("synthetic", DIMENSION), collection="bench_map")
    phases: dict[str, float] = {}
    current: dict[str, Any] = {"phase": "", "since": time.perf_counter()}

    def progress(phase: str, done: int, total: int) -> None:
        if phase != current["phase"]:
            now = time.perf_counter()
            if current["phase"]:
                name = str(current["phase"])
                phases[name] = phases.get(name, 0.0) + now - float(current["since"])
            current.update(phase=phase, since=now)

    started = time.perf_counter()
    try:
        built = build_map(
            store,
            version="bench",
            fit_sample=settings.map_fit_sample,
            clusters=settings.map_clusters,
            layout=settings.map_layout,
            layout_sample=settings.map_layout_sample,
            progress=progress,
        )
    finally:
        store.close()
    total = time.perf_counter() - started
    result = {
        "chunks": built.meta.total,
        "documents": len(built.sources),
        "fit_sample": built.meta.fit_sample,
        "clusters": len(built.meta.clusters),
        "layout": built.meta.layout,
        "layout_sample": built.meta.layout_sample,
        "fill_seconds": round(fill_seconds, 1),
        "phases_seconds": {k: round(v, 2) for k, v in phases.items()},
        "map_seconds": round(total, 1),
        "peak_rss_mb": round(_peak_rss_mb()),
    }
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>16}: {value}")


if __name__ == "__main__":
    main()
