"""OpenVinoEmbedder against the sentence-transformers reference, its padding and its threads."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.embedding.openvino import PAD_TO, OpenVinoEmbedder, padded_batches
from rag.embedding.sentence_transformers import SentenceTransformerEmbedder
from rag.errors import ModelError
from tests.conftest import MODEL_CACHE, PROJECT
from tests.embedding_samples import MODEL, cosines, sample_texts


@pytest.fixture(scope="module")
def openvino() -> OpenVinoEmbedder:
    embedder = OpenVinoEmbedder(MODEL, cache_dir=MODEL_CACHE)
    embedder.warm_up()
    return embedder


@pytest.fixture(scope="module")
def texts(openvino: OpenVinoEmbedder) -> list[str]:
    return sample_texts(openvino.count_tokens)


@pytest.mark.real_models
def test_openvino_matches_sentence_transformers(
    openvino: OpenVinoEmbedder, real_embedder: SentenceTransformerEmbedder, texts: list[str]
) -> None:
    # bfloat16 where the CPU has it natively, fp32 elsewhere: either way far closer to the
    # reference than int8.
    cos = cosines(openvino.embed_documents(texts), real_embedder.embed_documents(texts))
    assert cos.min() >= 0.999, cos
    assert cos.mean() >= 0.9999, cos
    assert (openvino.backend, openvino.model_name) == ("openvino", real_embedder.model_name)


@pytest.mark.real_models
def test_openvino_padding_changes_no_vector(
    openvino: OpenVinoEmbedder, real_embedder: SentenceTransformerEmbedder
) -> None:
    assert openvino.embed_documents([]).shape == (0, 384)
    long = "The pump pressure is fifteen bar. " * 300  # cut at 256 tokens
    odd = ["", "a", "Descale the machine monthly.", long, long[:-1], "espresso " * 40]
    together = openvino.embed_documents(odd)  # padded beside longer texts
    alone = np.stack([openvino.embed_query(t) for t in odd])  # padded only to PAD_TO
    assert together.dtype == np.float32
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert cosines(together, alone).min() > 0.9999
    assert cosines(together, real_embedder.embed_documents(odd)).min() >= 0.999


@pytest.mark.real_models
def test_openvino_serves_concurrent_callers(openvino: OpenVinoEmbedder, texts: list[str]) -> None:
    expected = openvino.embed_documents(texts)
    results: list[np.ndarray] = []
    workers = [
        threading.Thread(target=lambda: results.append(openvino.embed_documents(texts)))
        for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(results) == 3
    for result in results:
        assert cosines(result, expected).min() > 0.9999


def test_padded_batches_cover_every_text_once() -> None:
    ids = [[1] * n for n in (1, 2, 15, 16, 17, 33, 300, 5, 16)]
    batches = padded_batches(ids, batch_size=2, limit=256)
    rows = [r for rows, _, _ in batches for r in rows]
    assert sorted(rows) == list(range(len(ids)))
    for rows, input_ids, mask in batches:
        assert input_ids.shape == mask.shape and len(rows) <= 2
        width = input_ids.shape[1]
        assert width % PAD_TO == 0 and width <= 256
        assert list(mask.sum(axis=1)) == [min(len(ids[r]), 256) for r in rows]
        # Rows share a width only when they round up to it: no text pads past PAD_TO - 1.
        assert all(width - min(len(ids[r]), 256) < PAD_TO for r in rows)


@pytest.mark.real_models
def test_the_openvino_path_imports_no_torch(openvino: OpenVinoEmbedder) -> None:
    code = (
        "import sys; from pathlib import Path\n"
        "from rag.embedding.openvino import OpenVinoEmbedder\n"
        f"e = OpenVinoEmbedder({MODEL!r}, cache_dir=Path({str(MODEL_CACHE)!r}))\n"
        "e.count_tokens('x'); e.embed_query('hello')\n"
        "heavy = {'torch', 'transformers', 'sentence_transformers', 'onnx', 'onnxruntime'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True)
    assert (out.returncode, out.stdout.strip()) == (0, "[]"), out.stderr


@pytest.mark.real_models
def test_openvino_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec

    def without_openvino(name: str, package: str | None = None) -> Any:
        return None if name == "openvino" else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", without_openvino)
    with pytest.raises(ModelError, match="needs the openvino package"):
        OpenVinoEmbedder(MODEL, cache_dir=tmp_path).warm_up()
    assert not list(tmp_path.iterdir())  # nothing exported
