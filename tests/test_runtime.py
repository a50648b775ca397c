from __future__ import annotations

from pathlib import Path

import pytest

from rag import onnx_embedding
from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.models import gpu_present, pick_device
from rag.onnx_embedding import OnnxEmbedder
from rag.openvino_embedding import OpenVinoEmbedder
from rag.embedding import build_embedder


def test_auto_backend_follows_the_hardware(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_embedding, "cpu_flags", lambda: frozenset({"avx2", "avx512_vnni"}))
    on_cpu = build_embedder(Settings(data_dir=tmp_path, device="cpu"))
    assert type(on_cpu) is OnnxEmbedder and on_cpu.backend == "onnx-int8"
    for bf16 in ("amx_bf16", "avx512_bf16"):  # Intel AMX; AVX-512 BF16 (Zen 4+, Cooper Lake)
        monkeypatch.setattr(onnx_embedding, "cpu_flags", lambda f=bf16: frozenset({"avx2", f}))
        on_bf16 = build_embedder(Settings(data_dir=tmp_path, device="cpu"), bulk=True)
        assert isinstance(on_bf16, OpenVinoEmbedder) and on_bf16.backend == "openvino"
    for_questions = build_embedder(Settings(data_dir=tmp_path, device="cpu"))
    assert type(for_questions) is OnnxEmbedder and for_questions.backend == "onnx-int8"
    on_gpu = build_embedder(Settings(data_dir=tmp_path, device="cuda"), bulk=True)
    assert isinstance(on_gpu, SentenceTransformerEmbedder) and on_gpu.backend == "torch"
    # Nothing is loaded to decide: building an embedder costs no model load.
    chosen = build_embedder(Settings(data_dir=tmp_path, embedding_backend="onnx-fp32"))
    assert isinstance(chosen, OnnxEmbedder) and chosen.backend == "onnx-fp32"


def test_gpu_detection_follows_the_device_setting() -> None:
    assert not gpu_present("cpu")
    assert gpu_present("cuda") and gpu_present("mps")
    # "auto" agrees with torch's own view of the machine (without a GPU device file it
    # answers without importing torch at all).
    assert gpu_present("auto") == (pick_device("auto") != "cpu")


def test_only_a_local_model_judges_the_fallback(tmp_path: Path) -> None:
    from rag.query import build_generator, build_judge

    local = Settings(data_dir=tmp_path)
    generator = build_generator(local)  # nothing is loaded until first use
    assert build_judge(local, generator) is generator
    off = Settings(data_dir=tmp_path, fallback_judge="off")
    assert build_judge(off, generator) is None
    remote = Settings(
        data_dir=tmp_path,
        generator="openai",
        openai_base_url="http://127.0.0.1:9/v1",
        openai_model="m",
    )
    assert build_judge(remote, build_generator(remote)) is None
