"""OnnxEmbedder against the sentence-transformers reference, and its cached export.

The real graphs are exported once into MODEL_CACHE and reused by later runs.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.embedding.folder import read_folder_config
from rag.embedding.onnx import SMALL_BATCH, OnnxEmbedder, _Sessions
from rag.embedding.sentence_transformers import SentenceTransformerEmbedder
from rag.models import resolve_embedding_model
from tests.conftest import MODEL_CACHE, PROJECT
from tests.embedding_samples import MODEL, cosines, sample_texts

pytestmark = pytest.mark.real_models

# Per text, int8 against fp32: the floor and the mean a sound recipe stays above. A broken
# recipe (naive per-tensor quantization) falls well below them; the margin keeps one hard text
# from flaking.
INT8_MIN_COSINE = 0.97
INT8_MEAN_COSINE = 0.99


@pytest.fixture(scope="module")
def int8() -> OnnxEmbedder:
    embedder = OnnxEmbedder(MODEL, cache_dir=MODEL_CACHE, backend="onnx-int8")
    embedder.warm_up()
    return embedder


@pytest.fixture(scope="module")
def fp32() -> OnnxEmbedder:
    embedder = OnnxEmbedder(MODEL, cache_dir=MODEL_CACHE, backend="onnx-fp32")
    embedder.warm_up()
    return embedder


@pytest.fixture(scope="module")
def texts(int8: OnnxEmbedder) -> list[str]:
    return sample_texts(int8.count_tokens)


def test_int8_agrees_with_sentence_transformers(
    int8: OnnxEmbedder, real_embedder: SentenceTransformerEmbedder, texts: list[str]
) -> None:
    cos = cosines(int8.embed_documents(texts), real_embedder.embed_documents(texts))
    assert cos.min() >= INT8_MIN_COSINE, cos
    assert cos.mean() >= INT8_MEAN_COSINE, cos


def test_fp32_matches_sentence_transformers(
    fp32: OnnxEmbedder, real_embedder: SentenceTransformerEmbedder, texts: list[str]
) -> None:
    cos = cosines(fp32.embed_documents(texts), real_embedder.embed_documents(texts))
    assert cos.min() >= 0.9999, cos


def test_int8_retrieves_the_same_top_passage(
    int8: OnnxEmbedder, real_embedder: SentenceTransformerEmbedder, texts: list[str]
) -> None:
    questions = [
        "How often should the coffee machine be descaled?",
        "Which grinder setting is for espresso?",
        "What does the warranty cover?",
        "When should tomato seeds be sown?",
        "What causes blossom end rot?",
        "Where do I park my bicycle at the office?",
        "When is the office open on Saturdays?",
        "How do I parse command-line options?",
        "How do I run a child process and read its output?",
    ]
    for embedder in (int8, real_embedder):
        assert embedder.embed_documents(questions).shape == (len(questions), 384)
    ours = int8.embed_documents(questions) @ int8.embed_documents(texts).T
    reference = real_embedder.embed_documents(questions) @ real_embedder.embed_documents(texts).T
    assert list(ours.argmax(axis=1)) == list(reference.argmax(axis=1))
    for query in questions[:2]:  # the query path is the document path with one text
        assert float(int8.embed_query(query) @ real_embedder.embed_query(query)) > 0.98


def test_interface_matches_the_torch_embedder(
    int8: OnnxEmbedder, real_embedder: SentenceTransformerEmbedder
) -> None:
    fresh = OnnxEmbedder(MODEL, cache_dir=MODEL_CACHE)
    assert (fresh.model_name, fresh.dimension, fresh.max_tokens) == (
        real_embedder.model_name,
        real_embedder.dimension,
        real_embedder.max_tokens,
    )
    assert fresh._loaded is None  # known from the folder's files, nothing loaded
    assert (fresh.backend, real_embedder.backend) == ("onnx-int8", "torch")
    for text in ["", "Hello, World!", "naïve café — déjà vu", "x " * 5000, "Ünïcödé " * 400]:
        assert int8.count_tokens(text) == real_embedder.count_tokens(text)


def test_edge_cases(int8: OnnxEmbedder, real_embedder: SentenceTransformerEmbedder) -> None:
    assert int8.embed_documents([]).shape == (0, 384)
    assert int8.embed_documents([]).dtype == np.float32
    long = "The pump pressure is fifteen bar. " * 300  # ~2,700 tokens: cut at 256
    odd = ["", "   ", long, "a", long[:-1]]
    ours = int8.embed_documents(odd)
    assert ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert cosines(ours, real_embedder.embed_documents(odd)).min() >= INT8_MIN_COSINE
    # Truncation keeps the start, as sentence-transformers does: same first 254 tokens.
    assert float(ours[2] @ ours[4]) > 0.9999
    # Batching by length must not mix rows up: each text alone gives the same vector.
    alone = np.stack([int8.embed_query(t) for t in odd])
    assert np.allclose(alone, ours, atol=1e-3)


def test_a_second_start_reuses_the_cached_export(
    int8: OnnxEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    path = int8.loaded.path
    before = path.stat().st_mtime_ns
    caplog.set_level(logging.INFO, logger="rag.embedding")
    again = OnnxEmbedder(MODEL, cache_dir=MODEL_CACHE)
    again.warm_up()
    assert again.loaded.path == path
    assert path.stat().st_mtime_ns == before
    assert not [r for r in caplog.records if "exporting" in r.getMessage()]
    meta = json.loads((path.parent / "export.json").read_text())
    assert meta["fused_operators"]["MultiHeadAttention"] == 6


def test_the_runtime_path_imports_no_torch(int8: OnnxEmbedder) -> None:
    code = (
        "import sys; from pathlib import Path; from rag.embedding.onnx import OnnxEmbedder\n"
        f"e = OnnxEmbedder({MODEL!r}, cache_dir=Path({str(MODEL_CACHE)!r}))\n"
        "e.count_tokens('x'); e.embed_query('hello')\n"
        "heavy = {'torch', 'transformers', 'sentence_transformers', 'onnx'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stderr


class _Counting:
    """A session that counts its runs."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.runs = 0

    def run(self, *args: Any) -> Any:
        self.runs += 1
        return self.session.run(*args)


def test_small_batches_run_on_one_thread_with_the_same_vectors(texts: list[str]) -> None:
    embedder = OnnxEmbedder(MODEL, cache_dir=MODEL_CACHE)
    sessions = embedder.loaded.session
    assert sessions.single is not sessions.wide
    assert sessions.single.get_session_options().intra_op_num_threads == 1
    # The same rows through either session: the thread count changes no vector.
    ids = np.array([embedder.loaded.tokenizer.encode(texts[0]).ids] * (SMALL_BATCH + 1))
    wide = sessions.wide.run(None, {"input_ids": ids})[0]
    single = sessions.single.run(None, {"input_ids": ids})[0]
    assert np.allclose(wide, single, atol=1e-5)

    counted = _Sessions(_Counting(sessions.wide), _Counting(sessions.single))
    object.__setattr__(embedder.loaded, "session", counted)
    embedder.embed_query("one text")
    assert (counted.wide.runs, counted.single.runs) == (0, 1)
    embedder.embed_documents(["same length"] * SMALL_BATCH)
    assert (counted.wide.runs, counted.single.runs) == (1, 1)


def test_one_thread_everywhere_opens_the_graph_once() -> None:
    sessions = OnnxEmbedder(MODEL, cache_dir=MODEL_CACHE, threads=1).loaded.session
    assert sessions.single is sessions.wide


def test_a_folder_saved_by_the_installed_sentence_transformers_runs_as_the_original(
    tmp_path: Path, fp32: OnnxEmbedder, real_embedder: SentenceTransformerEmbedder
) -> None:
    # Recent sentence-transformers (6.x) write a Pooling module's mode and the token limit
    # where older versions did not: a model fine-tuned and saved today must run as well.
    resaved = tmp_path / "resaved"
    real_embedder.model.save(str(resaved))
    assert "pooling_mode" in json.loads((resaved / "1_Pooling" / "config.json").read_text())
    assert read_folder_config(resaved) == read_folder_config(resolve_embedding_model(MODEL))
    embedder = OnnxEmbedder(str(resaved), cache_dir=tmp_path / "cache", backend="onnx-fp32")
    texts = ["How do I read a file line by line?", "Stock markets fell today."]
    assert np.allclose(embedder.embed_documents(texts), fp32.embed_documents(texts), atol=1e-5)
