"""The Embedder on OpenVINO: bfloat16 in hardware (AMX, AVX-512 BF16) does the bulk of the work.

On a CPU with native bfloat16, OpenVINO runs the graph in bfloat16 by default, with vectors
that match fp32's (cosine 0.99999 on PostgreSQL doc chunks, where ONNX Runtime's int8 gives
0.994), and embeds more chunks per second than the int8 graph: about 1.5x on an Intel CPU with
AMX, 1.1-1.3x on an AMD Zen 5 with AVX-512 BF16 (bench/bench_embed.py; README, Measurements).
Elsewhere it runs in fp32, slower than int8, so ``rag.runtime`` picks it by itself only where
bfloat16 is native.

The graph (``rag.onnx_export``, a recipe with ``pooling``: exported once, kept as OpenVINO IR
with fp16 weights) takes an attention mask and pools inside. Batches are sorted by length and
padded up to a multiple of ``PAD_TO`` tokens: a few shapes, each compiled once per process, at
under 16 padded tokens per text. One-length batches without padding, as the ONNX Runtime path
runs them, were slower here (79-93 against 105 chunks/s): most lengths hold a handful of texts,
and every new shape costs a kernel build.

One inference request runs at a time, over all cores (OpenVINO's latency mode). Two requests at
once from two threads (throughput mode, one stream per core) were 10-25 % faster, but a CI run
stalled for good in an ingestion on them: on machines with few cores, requests that meet a new
input shape at the same moment can deadlock inside the CPU plugin (ultralytics/ultralytics#25923;
its fix, #25921, went back to one synchronous request, as here).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ModelError
from rag.onnx_embedding import OnnxBackend, OnnxEmbedder, _FolderConfig, _Loaded
from rag.onnx_export import ExportRecipe

log = logging.getLogger(__name__)

# Most texts per request. OpenVINO keeps compiled code and buffers for every input shape it has
# run, for the life of the compiled model: with 32 rows, all shapes took RSS to 1.7 GB. With 8
# (16 widths x 8 row counts) every shape together takes the process to 414 MB (4 rows: 322 MB),
# less than ONNX Runtime's int8 arena after one batch of 64 long texts (530 MB).
MAX_ROWS = 8
# Padding granularity, in tokens. Measured on PostgreSQL doc chunks: 8 -> 97, 16 -> 105,
# 32 -> 98-126 chunks/s (noisy machine); 16 keeps the waste under 6 % of ~135-token chunks.
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

    def _recipe(self, config: _FolderConfig) -> ExportRecipe:
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

    def _run(self, loaded: _Loaded, ids: list[list[int]], out: np.ndarray) -> None:
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
