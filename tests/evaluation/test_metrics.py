from __future__ import annotations

import math

import pytest

from rag.chunking import chunk_id
from rag.evaluation.metrics import (
    mrr_at_k,
    ndcg_at_k,
    percentile,
    rank_documents,
    rank_hits,
    recall_at_k,
    retrieval_metrics,
)
from rag.types import Chunk, Hit


def test_ndcg_uses_graded_gains_and_the_ideal_order_of_the_qrels() -> None:
    qrels = {"a": 2, "b": 1, "c": 0}
    # Ranking: x (0), b (1), a (2); DCG = 1/log2(3) + 2/log2(4); IDCG = 2/1 + 1/log2(3).
    expected = (1 / math.log2(3) + 2 / 2) / (2 + 1 / math.log2(3))
    assert ndcg_at_k(["x", "b", "a"], qrels, 10) == pytest.approx(expected)
    assert ndcg_at_k(["a", "b", "x"], qrels, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], qrels, 10) == 0.0
    # Beyond the cutoff nothing counts; IDCG is cut too.
    assert ndcg_at_k(["x", "a"], qrels, 1) == 0.0
    assert ndcg_at_k(["a"], {"a": 1, "b": 1}, 1) == pytest.approx(1.0)


def test_ndcg_with_no_relevant_documents_is_zero() -> None:
    assert ndcg_at_k(["a"], {"a": 0}, 10) == 0.0


def test_recall_and_mrr() -> None:
    qrels = {"a": 1, "b": 1, "c": 1, "z": 0}
    ranking = ["x", "a", "z", "b"] + [f"n{i}" for i in range(200)] + ["c"]
    assert recall_at_k(ranking, qrels, 2) == pytest.approx(1 / 3)
    assert recall_at_k(ranking, qrels, 10) == pytest.approx(2 / 3)
    assert recall_at_k(ranking, qrels, 1000) == pytest.approx(1.0)
    assert mrr_at_k(ranking, qrels, 10) == pytest.approx(1 / 2)
    assert mrr_at_k(["z", "x"], qrels, 10) == 0.0  # grade 0 is not relevant
    assert mrr_at_k(["x"] * 10 + ["a"], qrels, 10) == 0.0


def test_retrieval_metrics_average_over_queries_with_relevant_documents() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}
    run = {"q1": ["a"], "q3": ["c"]}  # q2 retrieved nothing; q3 has no relevant doc
    metrics = retrieval_metrics(run, qrels)
    assert metrics == {
        "ndcg@10": pytest.approx(0.5),
        "recall@10": pytest.approx(0.5),
        "recall@100": pytest.approx(0.5),
        "mrr@10": pytest.approx(0.5),
    }


def test_documents_are_ranked_by_their_best_chunk() -> None:
    scored = [("long", 0.9), ("short", 0.8), ("long", 0.1), ("long", 0.05), ("other", 0.8)]
    assert rank_documents(scored) == ["long", "short", "other"]  # a tie keeps first seen
    assert rank_documents(scored, limit=2) == ["long", "short"]
    # Summing the top chunks favours documents with several good chunks.
    many = [("a", 0.6), ("b", 0.5), ("b", 0.4), ("a", 0.01)]
    assert rank_documents(many, pooling="max") == ["a", "b"]
    assert rank_documents(many, pooling="sum2") == ["b", "a"]


def test_rank_hits_pools_chunks_by_source() -> None:
    def hit(source: str, score: float) -> Hit:
        chunk = Chunk(id=chunk_id(source, str(score), 0), source=source, title="", text="t")
        return Hit(chunk=chunk, score=score, similarity=score)

    assert rank_hits([hit("d1", 0.3), hit("d2", 0.2), hit("d1", 0.1), hit("d3", 0.05)]) == [
        "d1",
        "d2",
        "d3",
    ]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([3.0], 95) == 3.0
    assert percentile([], 50) == 0.0
