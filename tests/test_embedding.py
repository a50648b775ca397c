"""The embedding package: which backend ``build_embedder`` picks, that picking loads nothing,
and what it reads from a sentence-transformers folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag import models
from rag.config import Settings
from rag.embedding import Embedder, build_embedder
from rag.embedding.folder import FolderConfig, read_folder_config
from rag.embedding.onnx import OnnxEmbedder
from rag.embedding.openvino import OpenVinoEmbedder
from rag.embedding.sentence_transformers import SentenceTransformerEmbedder
from rag.errors import ModelError
from tests.conftest import PROJECT


def nothing_loaded(embedder: Embedder) -> bool:
    if isinstance(embedder, SentenceTransformerEmbedder):
        return embedder._model is None
    assert isinstance(embedder, OnnxEmbedder)
    return embedder._loaded is None


def test_auto_backend_follows_the_hardware(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "cpu_flags", lambda: frozenset({"avx2", "avx512_vnni"}))
    on_cpu = build_embedder(Settings(data_dir=tmp_path, device="cpu"))
    assert type(on_cpu) is OnnxEmbedder and on_cpu.backend == "onnx-int8"
    built: list[Embedder] = [on_cpu]
    for bf16 in ("amx_bf16", "avx512_bf16"):  # Intel AMX; AVX-512 BF16 (Zen 4+, Cooper Lake)
        monkeypatch.setattr(models, "cpu_flags", lambda f=bf16: frozenset({"avx2", f}))
        on_bf16 = build_embedder(Settings(data_dir=tmp_path, device="cpu"), bulk=True)
        assert isinstance(on_bf16, OpenVinoEmbedder) and on_bf16.backend == "openvino"
        built.append(on_bf16)
    for_questions = build_embedder(Settings(data_dir=tmp_path, device="cpu"))
    assert type(for_questions) is OnnxEmbedder and for_questions.backend == "onnx-int8"
    on_gpu = build_embedder(Settings(data_dir=tmp_path, device="cuda"), bulk=True)
    assert isinstance(on_gpu, SentenceTransformerEmbedder) and on_gpu.backend == "torch"
    chosen = build_embedder(Settings(data_dir=tmp_path, embedding_backend="onnx-fp32"))
    assert isinstance(chosen, OnnxEmbedder) and chosen.backend == "onnx-fp32"
    # Nothing is loaded to decide: building an embedder costs no model load.
    built += [for_questions, on_gpu, chosen]
    assert all(nothing_loaded(embedder) for embedder in built)


def test_auto_backend_takes_torch_where_the_auto_device_finds_a_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A machine with a GPU driver whose GPU torch can use, and a CPU that would otherwise
    # send ingestion to OpenVINO.
    monkeypatch.setattr(models, "gpu_driver_present", lambda: True)
    monkeypatch.setattr(models, "pick_device", lambda setting: "cuda")
    monkeypatch.setattr(models, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    auto = Settings(data_dir=tmp_path, device="auto")
    for bulk in (False, True):
        on_gpu = build_embedder(auto, bulk=bulk)
        assert isinstance(on_gpu, SentenceTransformerEmbedder) and on_gpu.backend == "torch"
        assert nothing_loaded(on_gpu)
    # The same machine with a torch that sees no GPU (a CPU-only build) stays on the CPU.
    monkeypatch.setattr(models, "pick_device", lambda setting: "cpu")
    assert type(build_embedder(auto)) is OnnxEmbedder
    assert isinstance(build_embedder(auto, bulk=True), OpenVinoEmbedder)


def test_choosing_a_backend_imports_no_model_runtime(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path\n"
        "from rag.config import Settings; from rag.embedding import build_embedder\n"
        "for backend in ('auto', 'torch', 'onnx-int8', 'onnx-fp32', 'openvino'):\n"
        "    for device in ('cpu', 'cuda'):\n"
        "        for bulk in (False, True):\n"
        "            settings = Settings(data_dir=Path(sys.argv[1]), device=device,\n"
        "                                embedding_backend=backend)\n"
        "            build_embedder(settings, bulk=bulk)\n"
        "heavy = {'torch', 'transformers', 'sentence_transformers', 'onnx', 'onnxruntime',\n"
        "         'openvino', 'tokenizers'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], cwd=PROJECT, capture_output=True, text=True
    )
    assert (out.returncode, out.stdout.strip()) == (0, "[]"), out.stderr


def _folder(root: Path, pooling: dict[str, object], st_config: dict[str, object]) -> Path:
    """A sentence-transformers folder's configuration files, without weights."""
    root.mkdir()
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "x.pooling.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "x.normalize.Normalize"},
    ]
    (root / "modules.json").write_text(json.dumps(modules))
    (root / "1_Pooling").mkdir()
    (root / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (root / "sentence_bert_config.json").write_text(json.dumps(st_config))
    (root / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 10**30}))
    (root / "config.json").write_text(json.dumps({"max_position_embeddings": 512}))
    (root / "tokenizer.json").write_text("{}")
    return root


def test_folders_of_old_and_new_sentence_transformers_read_alike(tmp_path: Path) -> None:
    old = _folder(
        tmp_path / "old",
        {"word_embedding_dimension": 384, "pooling_mode_cls_token": True},
        {"max_seq_length": 128, "do_lower_case": True},
    )
    assert read_folder_config(old) == FolderConfig(384, 128, "cls_token", True)
    # Recent ones: one mode by name, the limit with the tokenizer (none there: the positions').
    new = _folder(tmp_path / "new", {"embedding_dimension": 768, "pooling_mode": ["max"]}, {})
    assert read_folder_config(new) == FolderConfig(768, 512, "max_tokens", False)
    for n, mode in enumerate(["weightedmean", ["mean", "max"]]):
        odd = _folder(tmp_path / f"odd{n}", {"embedding_dimension": 8, "pooling_mode": mode}, {})
        with pytest.raises(ModelError, match="unsupported pooling"):
            read_folder_config(odd)
