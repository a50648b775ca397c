"""Cheap retrieval variants on SciFact, computed client-side from one dense and one BM25
search per query: RRF k and weights, prefetch depth, chunk- vs document-level fusion,
score fusion, and document pooling (best chunk vs sum of the best chunks).

    RAG_DATA_DIR=/tmp/scifact-data RAG_MODEL_CACHE_DIR=data/models \
        python bench/tune_scifact.py --split train [--collection scifact] [--top 15]
    python bench/tune_scifact.py --split test --only "rrf chunk k=60 p=50 w=1:1" ...

The collection must already hold the corpus (bench/bench_scifact.py builds it). Tune on
train; evaluate only the chosen variants on test (``--only``). Prints numbers.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rag.config import Settings
from rag.evaluation import (
    Pooling,
    load_beir,
    rank_documents,
    retrieval_metrics,
    rrf_fuse,
    search_single,
)
from rag.runtime import build_embedder, open_collection

DEFAULT_DATASET = Path("/work/shared/data/scifact")
DEPTH = 200

Ranked = list[tuple[str, str, float]]  # (chunk id, doc id, score), best first
Variant = Callable[[Ranked, Ranked], list[str]]


def chunk_rrf(k: int, prefetch: int, weights: tuple[float, float], pooling: Pooling) -> Variant:
    def run(dense: Ranked, bm25: Ranked) -> list[str]:
        doc_of = {c: d for c, d, _ in dense[:prefetch] + bm25[:prefetch]}
        fused = rrf_fuse(
            [[c for c, _, _ in dense[:prefetch]], [c for c, _, _ in bm25[:prefetch]]],
            k=k,
            weights=list(weights),
        )
        return rank_documents(((doc_of[c], s) for c, s in fused), pooling=pooling)

    return run


def doc_rrf(k: int, weights: tuple[float, float], pooling: Pooling) -> Variant:
    def run(dense: Ranked, bm25: Ranked) -> list[str]:
        lists = [
            rank_documents(((d, s) for _, d, s in ranked), pooling=pooling)
            for ranked in (dense, bm25)
        ]
        return [d for d, _ in rrf_fuse(lists, k=k, weights=list(weights))]

    return run


def doc_scores(ranked: Ranked, pooling: Pooling) -> dict[str, float]:
    top = {"max": 1, "sum2": 2}[pooling]
    per: dict[str, list[float]] = {}
    for _, d, s in ranked:
        per.setdefault(d, []).append(s)
    return {d: sum(sorted(v, reverse=True)[:top]) for d, v in per.items()}


def convex(alpha: float, norm: str) -> Variant:
    """alpha * dense + (1 - alpha) * bm25 on document scores normalized per query (min-max,
    or z-score as Qdrant's DBSF does with mean +- 3 sd); a missing side counts as its minimum."""

    def normalize(scores: dict[str, float]) -> dict[str, float]:
        if not scores:
            return {}
        values = list(scores.values())
        if norm == "minmax":
            lo, hi = min(values), max(values)
        else:
            mean = sum(values) / len(values)
            sd = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
            lo, hi = mean - 3 * sd, mean + 3 * sd
        span = (hi - lo) or 1.0
        return {d: (v - lo) / span for d, v in scores.items()}

    def run(dense: Ranked, bm25: Ranked) -> list[str]:
        a, b = normalize(doc_scores(dense, "max")), normalize(doc_scores(bm25, "max"))
        a_min, b_min = min(a.values(), default=0.0), min(b.values(), default=0.0)
        total = {
            d: alpha * a.get(d, a_min) + (1 - alpha) * b.get(d, b_min) for d in set(a) | set(b)
        }
        return sorted(total, key=lambda d: -total[d])

    return run


def dbsf_chunk(prefetch: int, alpha: float = 0.5) -> Variant:
    """Distribution-based score fusion on chunks, as Qdrant's ``Fusion.Dbsf()`` does for
    alpha = 0.5: each prefetch list's scores mapped by mean +- 3 sd to 0..1, then summed;
    documents by their best chunk."""

    def normalized(ranked: Ranked) -> dict[str, float]:
        values = [s for _, _, s in ranked]
        if not values:
            return {}
        mean = sum(values) / len(values)
        sd = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
        lo, span = mean - 3 * sd, (6 * sd) or 1.0
        return {c: (s - lo) / span for c, _, s in ranked}

    def run(dense: Ranked, bm25: Ranked) -> list[str]:
        d, b = normalized(dense[:prefetch]), normalized(bm25[:prefetch])
        doc_of = {c: doc for c, doc, _ in dense[:prefetch] + bm25[:prefetch]}
        total = {c: alpha * d.get(c, 0.0) + (1 - alpha) * b.get(c, 0.0) for c in doc_of}
        return rank_documents(
            (doc_of[c], v) for c, v in sorted(total.items(), key=lambda kv: -kv[1])
        )

    return run


def single(which: int, pooling: Pooling) -> Variant:
    def run(dense: Ranked, bm25: Ranked) -> list[str]:
        ranked = (dense, bm25)[which]
        return rank_documents(((d, s) for _, d, s in ranked), pooling=pooling)

    return run


def variants() -> dict[str, Variant]:
    out: dict[str, Variant] = {}
    poolings: tuple[Pooling, Pooling] = ("max", "sum2")
    for pooling in poolings:
        out[f"dense pool={pooling}"] = single(0, pooling)
        out[f"bm25 pool={pooling}"] = single(1, pooling)
    weight_grid: Sequence[tuple[float, float]] = [(1, 1), (1, 1.5), (1, 2), (1.5, 1), (2, 1)]
    for k, p, w, pooling in itertools.product(
        (10, 20, 40, 60, 100), (50, 100, 200), weight_grid, poolings
    ):
        name = f"rrf chunk k={k} p={p} w={w[0]:g}:{w[1]:g} pool={pooling}"
        out[name] = chunk_rrf(k, p, w, pooling)
    for k, w in itertools.product((10, 20, 40, 60, 100), weight_grid):
        out[f"rrf doc k={k} w={w[0]:g}:{w[1]:g}"] = doc_rrf(k, w, "max")
    for alpha, norm in itertools.product((0.3, 0.4, 0.5, 0.6, 0.7), ("minmax", "dbsf")):
        out[f"convex {norm} a={alpha}"] = convex(alpha, norm)
    for p, alpha in itertools.product((50, 100, 200), (0.4, 0.5, 0.6)):
        out[f"dbsf chunk p={p} a={alpha}"] = dbsf_chunk(p, alpha)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--split", default="train")
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--top", type=int, default=15, help="Print the best N variants.")
    parser.add_argument("--only", nargs="*", help="Evaluate only these variants.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = Settings()
    dataset = load_beir(args.dataset, args.split)
    embedder = build_embedder(settings)
    store = open_collection(settings, embedder, collection=args.collection)
    candidates: dict[str, tuple[Ranked, Ranked]] = {}
    wanted = dataset.evaluated_queries
    # One batch: the same vectors as embed_query one by one, in a fraction of the time.
    vectors = embedder.embed_documents([dataset.queries[q] for q in wanted])
    try:
        for q, vector in zip(wanted, vectors, strict=True):
            text = dataset.queries[q]
            dense = search_single(store, text, vector, using="dense", k=DEPTH)
            bm25 = search_single(store, text, None, using="bm25", k=DEPTH)
            candidates[q] = (
                [(h.chunk.id, h.chunk.source, h.score) for h in dense],
                [(h.chunk.id, h.chunk.source, h.score) for h in bm25],
            )
    finally:
        store.close()
    qrels = {q: dataset.qrels[q] for q in candidates}
    table = []
    for name, variant in variants().items():
        if args.only and name not in args.only:
            continue
        run = {q: variant(d, b)[:100] for q, (d, b) in candidates.items()}
        table.append((name, retrieval_metrics(run, qrels)))
    table.sort(key=lambda row: -row[1]["ndcg@10"])
    print(f"{args.split}: {len(candidates)} queries, depth {DEPTH} chunks per vector")
    print(f"{'variant':<44} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'MRR@10':>7}")
    shown = table if args.only else table[: args.top]
    named = [r for r in table if r[0].startswith(("dense pool=max", "bm25 pool=max"))]
    default = [r for r in table if r[0] == "rrf chunk k=60 p=50 w=1:1 pool=max"]
    for name, m in shown + [r for r in named + default if r not in shown]:
        print(
            f"{name:<44} {m['ndcg@10']:>8.4f} {m['recall@10']:>7.4f} "
            f"{m['recall@100']:>7.4f} {m['mrr@10']:>7.4f}"
        )


if __name__ == "__main__":
    main()
