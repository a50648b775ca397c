from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.errors import InvalidInputError
from rag.evaluation import evaluate_retrieval
from tests.evaluation.tiny_beir import write_beir
from tests.fakes import HashEmbedder


class WarmingEmbedder(HashEmbedder):
    """Records its warm-ups and queries in order."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def warm_up(self) -> None:
        self.events.append("warm")

    def embed_query(self, text: str) -> np.ndarray:
        self.events.append("query")
        return super().embed_query(text)


def test_evaluate_retrieval_end_to_end_with_the_real_store(
    tmp_path: Path, settings: Settings
) -> None:
    dataset = write_beir(tmp_path / "tiny")
    embedder = HashEmbedder()
    report = evaluate_retrieval(
        settings, dataset, "test", collection="tiny", embedder=embedder, chunk_k=20
    )
    assert report.queries == 4 and report.ingest.chunks_embedded == report.ingest.chunks >= 5
    assert [r.mode for r in report.results] == ["hybrid", "dense", "bm25"]
    for result in report.results:
        assert result.metrics["ndcg@10"] == pytest.approx(1.0), result.mode
        assert result.run["1"][0] == "d1"
        assert result.timing["queries"] == 4
    assert "hybrid" in report.table() and "ndcg@10" in json.dumps(report.to_dict())

    fresh = WarmingEmbedder()
    again = evaluate_retrieval(
        settings, dataset, "test", collection="tiny", embedder=fresh, reuse=True, chunk_k=20
    )
    assert again.ingest.reused and again.ingest.chunks_embedded == 0
    assert fresh.events[0] == "warm" and "query" in fresh.events  # loaded before any query
    assert fresh.calls == []  # nothing re-embedded
    assert [r.metrics for r in again.results] == [r.metrics for r in report.results]


def test_evaluation_never_touches_a_collection_of_ingested_documents(
    tmp_path: Path, settings: Settings
) -> None:
    from rag.catalog import state_path

    state = state_path(settings, "default")
    state.parent.mkdir(parents=True)
    state.write_bytes(b"")
    with pytest.raises(InvalidInputError, match="holds ingested documents"):
        evaluate_retrieval(
            settings, write_beir(tmp_path / "tiny"), collection="default", embedder=HashEmbedder()
        )


def test_cli_eval_names_a_missing_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from rag.cli import app

    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["eval", "retrieval", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "corpus.jsonl: no such file" in result.output
    result = CliRunner().invoke(app, ["eval", "qa", str(tmp_path / "qa.jsonl")])
    assert result.exit_code == 2 and "no such file" in result.output
