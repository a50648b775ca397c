"""The Embedder protocol, and ``build_embedder``: the one place where the backend is chosen.

One module per backend, each imported only when chosen, so importing this package loads no
model runtime:

- ``sentence_transformers``: ``SentenceTransformerEmbedder`` (PyTorch; the reference vectors);
- ``onnx``: ``OnnxEmbedder`` (ONNX Runtime on the CPU, int8 or fp32; no torch at run time);
- ``openvino``: ``OpenVinoEmbedder`` (OpenVINO, bfloat16 where the CPU computes in it natively);
- ``export``: the one-time export of a model folder to the graphs the last two run, and its cache.

``folder`` holds what every backend reads from a sentence-transformers folder.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Protocol

from rag import models

if TYPE_CHECKING:
    import numpy as np

    from rag.config import Settings

__all__ = ["Embedder", "auto_embedding_backend", "build_embedder"]


class Embedder(Protocol):
    """Turns text into unit-length vectors. Documents and queries are separate calls.

    Building one loads nothing: ``warm_up`` loads the model, and every other method that needs
    it loads it on first use. ``model_name``, ``dimension`` and ``max_tokens`` are known without
    loading it where the model's files say them.
    """

    def warm_up(self) -> None:
        """Load the model now, so the first call does not wait; a no-op once it is loaded."""
        ...

    @property
    def model_name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Longest input in the model's own tokens, special tokens included."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model would read for ``text``, special tokens excluded."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def build_embedder(settings: Settings, *, bulk: bool = False) -> Embedder:
    """The configured embedder, not yet loaded.

    ``bulk``: for ingestion, which embeds thousands of chunks, rather than for questions.
    """
    backend = settings.embedding_backend
    if backend == "auto":
        backend = auto_embedding_backend(settings.device, bulk=bulk)
    if backend == "torch":
        from rag.embedding.sentence_transformers import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(
            settings.embedding_model,
            device=settings.device,
            batch_size=settings.embedding_batch_size,
        )
    if backend == "openvino":
        from rag.embedding.openvino import OpenVinoEmbedder

        return OpenVinoEmbedder(
            settings.embedding_model,
            cache_dir=settings.models_dir,
            batch_size=settings.embedding_batch_size,
        )
    from rag.embedding.onnx import OnnxEmbedder

    return OnnxEmbedder(
        settings.embedding_model,
        cache_dir=settings.models_dir,
        backend=backend,
        batch_size=settings.embedding_batch_size,
    )


def auto_embedding_backend(
    device: str, *, bulk: bool = False
) -> Literal["torch", "openvino", "onnx-int8"]:
    """What ``embedding_backend="auto"`` runs on this machine, decided without loading a model.

    - A GPU: PyTorch, the only backend here that uses one.
    - Ingestion (``bulk``) on a CPU that computes in bfloat16 natively (Intel AMX or AVX-512
      BF16), with the openvino package installed: OpenVINO, which runs in bfloat16 there, embeds
      faster than int8 and gives vectors closer to the fp32 reference.
    - Otherwise ONNX Runtime int8. Without native bfloat16 OpenVINO runs in fp32, slower than
      int8. Questions stay on int8 even where bfloat16 is native: one short text at a time gains
      nothing from OpenVINO, and a server holding it needs more memory and starts later. The
      vectors of the two backends mix, so a collection ingested with OpenVINO is searched with
      int8 questions.
    """
    if models.gpu_present(device):
        return "torch"
    if bulk and models.has_native_bf16() and importlib.util.find_spec("openvino") is not None:
        return "openvino"
    return "onnx-int8"
