"""The Embedder on OpenVINO: bfloat16 in hardware (AMX, AVX-512 BF16) does the bulk of the work.

On a CPU with native bfloat16, OpenVINO runs the graph in bfloat16 by default, with vectors
that match fp32's more closely than ONNX Runtime's int8 and at a higher throughput for
ingestion (``bench/bench_embed.py`` measures both). Elsewhere it runs in fp32, slower than
int8, so ``embedding_backend="auto"`` picks it only where bfloat16 is native.

The graph (``rag.embedding.export``, a recipe with ``pooling``: exported once, kept as OpenVINO
IR with fp16 weights) takes an attention mask and pools inside. Batches are sorted by length
and padded up to a multiple of ``PAD_TO`` tokens: a few shapes, each compiled once per process,
and fewer than ``PAD_TO`` padding tokens per text. One-length batches without padding, as the
ONNX Runtime path runs them, are slower here: most lengths hold a handful of texts, and every
new shape costs a kernel build.

One inference request runs at a time, over all cores (OpenVINO's latency mode). Two requests
at once from two threads (throughput mode) are faster, but on machines with few cores,
requests that meet a new input shape at the same moment can deadlock inside the CPU plugin
(ultralytics/ultralytics#25923; its fix, #25921, went back to one synchronous request, as here).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding.export import ExportRecipe
from rag.embedding.folder import FolderConfig
from rag.embedding.onnx import LoadedOnnxModel, OnnxBackend, OnnxEmbedder
from rag.errors import ModelError

log = logging.getLogger(__name__)

# Most texts per request. OpenVINO keeps compiled code and buffers for every input shape it has
# run, for the life of the compiled model, so memory grows with the number of row counts times
# widths; a small cap keeps all shapes together below ONNX Runtime's int8 memory.
MAX_ROWS = 8
# Padding granularity, in tokens: coarser means fewer shapes to compile, finer means less
# padding computed; 16 wastes a small share of a typical chunk.
PAD_TO = 16


class OpenVinoEmbedder(OnnxEmbedder):
    """The pooled export (OpenVINO IR) run by OpenVINO's CPU plugin, in bfloat16 where the CPU
    computes in it natively."""

    _BACKENDS: tuple[OnnxBackend, ...] = ("openvino",)

    def __init__(
        self,
        model: str,
        *,
        cache_dir: Path,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        super().__init__(
            model,
            cache_dir=cache_dir,
            backend="openvino",
            batch_size=min(batch_size, MAX_ROWS),
            threads=threads,
        )

    def _recipe(self, config: FolderConfig) -> ExportRecipe:
        if importlib.util.find_spec("openvino") is None:
            raise ModelError(
                "RAG_EMBEDDING_BACKEND=openvino needs the openvino package (pip install openvino)"
            )
        return ExportRecipe(quantize=False, pooling=config.pooling)

    def _open(self, path: Path) -> _Session:
        import openvino as ov

        properties: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if self._threads:
            properties["INFERENCE_NUM_THREADS"] = self._threads
        compiled = ov.Core().compile_model(str(path), "CPU", properties)
        log.info(
            "OpenVINO runs %s in %s",
            path.name,
            compiled.get_property("INFERENCE_PRECISION_HINT"),
        )
        return _Session(compiled, compiled.create_infer_request())

    def _run(self, loaded: LoadedOnnxModel, ids: list[list[int]], out: np.ndarray) -> None:
        session: _Session = loaded.session
        batches = padded_batches(ids, self._batch_size, loaded.config.max_seq_length)
        # Concurrent callers (questions beside an ingest in the API) take turns: see the
        # module docstring for why requests never run side by side.
        with session.lock:
            for rows, input_ids, mask in batches:
                inputs = {"input_ids": input_ids, "attention_mask": mask}
                out[rows] = session.request.infer(inputs)[0]


@dataclass
class _Session:
    """The compiled model and its one request (which keeps each shape's buffers for reuse)."""

    compiled: Any
    request: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


def padded_batches(
    ids: list[list[int]], batch_size: int, limit: int
) -> list[tuple[list[int], np.ndarray, np.ndarray]]:
    """(rows, input_ids, attention_mask) per batch: texts sorted by length, each batch padded
    to a multiple of PAD_TO tokens (at most ``limit``, the model's window)."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    by_width: dict[int, list[int]] = {}
    for index in order:
        width = min(-(-max(len(ids[index]), 1) // PAD_TO) * PAD_TO, max(limit, 1))
        by_width.setdefault(width, []).append(index)
    batches = []
    for width, indices in by_width.items():
        for start in range(0, len(indices), batch_size):
            rows = indices[start : start + batch_size]
            input_ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, index in enumerate(rows):
                row = ids[index][:width]
                input_ids[r, : len(row)] = row
                mask[r, : len(row)] = 1
            batches.append((rows, input_ids, mask))
    return batches
