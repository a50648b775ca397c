from __future__ import annotations

from pathlib import Path

from rag.config import Settings
from rag.embedding import SentenceTransformerEmbedder
from rag.models import gpu_present, pick_device
from rag.onnx_embedding import OnnxEmbedder
from rag.runtime import build_embedder


def test_auto_backend_is_int8_onnx_on_a_cpu_and_torch_on_a_gpu(tmp_path: Path) -> None:
    on_cpu = build_embedder(Settings(data_dir=tmp_path, device="cpu"))
    assert isinstance(on_cpu, OnnxEmbedder) and on_cpu.backend == "onnx-int8"
    on_gpu = build_embedder(Settings(data_dir=tmp_path, device="cuda"))
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
