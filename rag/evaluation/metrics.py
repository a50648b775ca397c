"""Retrieval metrics and timing summaries; pure functions over hand-made or measured runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from rag.types import Hit

Qrels = Mapping[str, Mapping[str, int]]
"""query id -> {doc id: graded relevance}; a grade of 0 or less is not relevant."""
Run = Mapping[str, Sequence[str]]
"""query id -> doc ids, best first."""
Pooling = Literal["max", "sum2", "sum3"]


def dcg(gains: Sequence[float]) -> float:
    """Sum of gain / log2(rank + 1), ranks from 1 (as trec_eval's ndcg_cut)."""
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, 1))


def ndcg_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with graded gains (as BEIR / pytrec_eval); 0 when nothing is relevant."""
    ideal = dcg(sorted((g for g in relevant.values() if g > 0), reverse=True)[:k])
    if ideal <= 0:
        return 0.0
    gains = [max(relevant.get(doc, 0), 0) for doc in ranking[:k]]
    return dcg(gains) / ideal


def recall_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    wanted = {d for d, g in relevant.items() if g > 0}
    if not wanted:
        return 0.0
    return len(wanted.intersection(ranking[:k])) / len(wanted)


def mrr_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    for rank, doc in enumerate(ranking[:k], 1):
        if relevant.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def retrieval_metrics(run: Run, qrels: Qrels) -> dict[str, float]:
    """Means over the queries with at least one relevant document (a query missing from the
    run counts as retrieving nothing)."""
    queries = [q for q, rel in qrels.items() if any(g > 0 for g in rel.values())]
    if not queries:
        return {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    per_query = {
        "ndcg@10": [ndcg_at_k(run.get(q, ()), qrels[q], 10) for q in queries],
        "recall@10": [recall_at_k(run.get(q, ()), qrels[q], 10) for q in queries],
        "recall@100": [recall_at_k(run.get(q, ()), qrels[q], 100) for q in queries],
        "mrr@10": [mrr_at_k(run.get(q, ()), qrels[q], 10) for q in queries],
    }
    return {name: statistics.fmean(values) for name, values in per_query.items()}


def rank_documents(
    scored: Iterable[tuple[str, float]], *, pooling: Pooling = "max", limit: int | None = None
) -> list[str]:
    """Doc ids best first, from (doc id, chunk score) pairs.

    ``max``: a document scores as its best chunk, so a long document is judged by its best
    part. ``sum2`` / ``sum3``: the sum of its best two / three chunks. Ties keep the order in
    which documents first appeared.
    """
    per_doc: dict[str, list[float]] = {}
    for doc, score in scored:
        per_doc.setdefault(doc, []).append(score)
    top = {"max": 1, "sum2": 2, "sum3": 3}[pooling]
    totals = {d: sum(sorted(s, reverse=True)[:top]) for d, s in per_doc.items()}
    order = {d: i for i, d in enumerate(per_doc)}
    ranked = sorted(totals, key=lambda d: (-totals[d], order[d]))
    return ranked[:limit] if limit is not None else ranked


def rank_hits(hits: Sequence[Hit], *, pooling: Pooling = "max") -> list[str]:
    """Sources best first, pooling the scores of each source's chunks."""
    return rank_documents(((h.chunk.source, h.score) for h in hits), pooling=pooling)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def timing_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Count, p50, p95 and mean, in milliseconds, of per-query (or per-question) seconds."""
    return {
        "queries": float(len(seconds)),
        "p50_ms": percentile(seconds, 50) * 1000,
        "p95_ms": percentile(seconds, 95) * 1000,
        "mean_ms": statistics.fmean(seconds) * 1000 if seconds else 0.0,
    }
