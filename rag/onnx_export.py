"""Sentence-transformers folder -> fused, optionally int8-quantized ONNX graph (run once, cached).

This is the only module of the ONNX path that imports torch and transformers, and only while a
model is being exported; ``rag.onnx_embedding`` calls it when its cache has no graph yet. A
recipe with ``pooling`` writes OpenVINO's graph instead (``rag.openvino_embedding``): masked,
pooled, unfused, saved as OpenVINO IR; the recipe notes below are for the ONNX Runtime graphs.

The recipe, measured with bench/bench_embed.py on 200 SciFact abstracts and 200 PostgreSQL doc
chunks against the fp32 sentence-transformers vectors (cosine per text, mean / min):

- Export without an attention mask. The embedder batches only texts of one token length, so
  no batch carries padding and no padded position is ever computed (about 25 % faster on doc
  chunks of mixed lengths than sorted, padded batches); and onnxruntime's CPU
  MultiHeadAttention takes its flash-attention path only when it has no key padding mask
  (another 10 % on 256-token texts).
- Fuse with onnxruntime's BERT optimizer (EmbedLayerNormalization, MultiHeadAttention,
  SkipLayerNormalization, BiasGelu). Eager attention is exported because the fuser does not
  recognise what transformers' SDPA attention traces to.
- int8: dynamic quantization of the MatMul weights, one scale per output channel: 0.995 /
  0.984. Per-tensor scales (the quantize_dynamic default) give 0.94 / 0.88. Embeddings stay
  fp32 (a lookup gains no speed from int8), and so does the attention core (activations times
  activations), which quantize_dynamic only touches when asked.
- reduce_range (7-bit weights) only on CPUs without an int8 dot-product instruction (VNNI on
  x86, dotprod on ARM): there onnxruntime's u8s8 kernel sums pairs of products in int16, which
  8-bit weights can saturate and 7-bit ones cannot, so the results equal those measured on a
  VNNI machine: 0.993 / 0.987.
- Measured and not taken: the FFN output projections kept in fp32 (all of them: 0.997 /
  0.994, 30 % slower; layers 0-1 only: 0.996 / 0.991, 15-20 % slower); MatMulNBits with
  8-bit weights and int8 compute (0.9993 / 0.9985, but half the speed); 4-bit MatMulNBits
  (0.96 / 0.94); uint8 weights (0.975 / 0.95).
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import ModelError

log = logging.getLogger(__name__)

# The fused attention needs to know the geometry; other architectures are exported unfused.
_FUSABLE_TYPES = frozenset({"bert"})


@dataclass(frozen=True, slots=True)
class ExportRecipe:
    quantize: bool
    reduce_range: bool = False
    # Set: a graph for OpenVINO (rag.openvino_embedding), saved as OpenVINO IR, that takes an
    # attention mask and returns the sentence vector pooled this way (a sentence-transformers
    # pooling mode). Its batches are padded to a few lengths; OpenVINO fuses the graph itself.
    pooling: str | None = None

    @property
    def filename(self) -> str:
        """The exported model's file name (OpenVINO IR keeps its weights beside it, .bin)."""
        return "model.xml" if self.pooling is not None else "model.onnx"


def export_onnx(folder: Path, destination: Path, recipe: ExportRecipe) -> dict[str, Any]:
    """Write ``destination`` (an .onnx file) from a sentence-transformers ``folder``.

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
        # onnxscript; it still exports this encoder exactly (cosine 1.0000 to torch).
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
    """ONNX -> OpenVINO IR with fp16 weights: a server holds 90 MB less than with the ONNX
    file's fp32 ones (164 against 252 MB after 20 queries), at the same speed, and vectors as
    close to fp32's (PostgreSQL chunks: cosine 0.999985 mean, 0.99995 min; the compute runs in
    bfloat16 where the CPU has it natively and fp32 elsewhere either way)."""
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
