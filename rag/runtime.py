"""Builds the configured components from Settings: the one place where choices are made."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from rag.config import Settings
from rag.embedding import Embedder, SentenceTransformerEmbedder
from rag.generation import Generator, PassageJudge
from rag.models import gpu_present
from rag.rerank import CrossEncoderReranker, Reranker
from rag.store.base import CollectionInfo, VectorStore
from rag.store.factory import open_store


def build_embedder(settings: Settings, *, bulk: bool = False) -> Embedder:
    """``bulk``: for ingestion, which embeds thousands of chunks, rather than for questions."""
    backend = settings.embedding_backend
    if backend == "auto":
        backend = auto_embedding_backend(settings.device, bulk=bulk)
    if backend == "torch":
        return SentenceTransformerEmbedder(
            settings.embedding_model,
            device=settings.device,
            batch_size=settings.embedding_batch_size,
        )
    if backend == "openvino":
        from rag.openvino_embedding import OpenVinoEmbedder

        return OpenVinoEmbedder(
            settings.embedding_model,
            cache_dir=settings.models_dir,
            batch_size=settings.embedding_batch_size,
        )
    from rag.onnx_embedding import OnnxEmbedder

    return OnnxEmbedder(
        settings.embedding_model,
        cache_dir=settings.models_dir,
        backend=backend,
        batch_size=settings.embedding_batch_size,
    )


def auto_embedding_backend(
    device: str, *, bulk: bool = False
) -> Literal["torch", "openvino", "onnx-int8"]:
    """PyTorch on a GPU. On a CPU: OpenVINO in bfloat16 for ingestion where the CPU computes
    in bfloat16 natively (AMX or AVX-512 BF16), else ONNX Runtime int8 (OpenVINO in fp32 is
    slower than int8: 120-128 against 166-178 chunks/s on a Zen 5 CPU, where bfloat16 gave
    193-224).

    Questions stay on int8 even with AMX: one short text at a time gained nothing from
    OpenVINO (SciFact query p50 13.6 against 19.7 ms), and a server holding it grew 200 MB more
    over 12 answers (peak 1,456 against 1,246 MB) and started 1 s later. Measured in session 5,
    when OpenVINO ran two requests at once; not measured again with one. The
    two backends' vectors mix: SciFact test nDCG@10 0.7356 with OpenVINO's documents and int8
    questions, 0.7363 with OpenVINO's for both.
    """
    if gpu_present(device):
        return "torch"
    from rag.onnx_embedding import has_native_bf16

    if bulk and has_native_bf16() and importlib.util.find_spec("openvino") is not None:
        return "openvino"
    return "onnx-int8"


def build_generator(settings: Settings) -> Generator:
    if settings.generator == "openai":
        from rag.generation.openai import OpenAIChatGenerator

        return OpenAIChatGenerator.from_settings(settings)
    from rag.generation.local import TransformersGenerator

    return TransformersGenerator(
        settings.llm_model, cache_dir=settings.models_dir, device=settings.device
    )


def build_judge(settings: Settings, generator: Generator) -> PassageJudge | None:
    """The local model judges the fallback's passages; through the OpenAI chat API a model
    cannot (it gives no log-probabilities of a given text)."""
    if settings.fallback_judge == "off":
        return None
    from rag.generation.local import TransformersGenerator

    return generator if isinstance(generator, TransformersGenerator) else None


def build_reranker(settings: Settings) -> Reranker | None:
    if settings.reranker_model is None:
        return None
    return CrossEncoderReranker(settings.reranker_model, device=settings.device)


def collection_info(embedder: Embedder) -> CollectionInfo:
    return CollectionInfo(embedding_model=embedder.model_name, dimension=embedder.dimension)


def open_collection(
    settings: Settings, embedder: Embedder, *, collection: str | None = None, create: bool = False
) -> VectorStore:
    return open_store(settings, collection_info(embedder), collection=collection, create=create)


def state_path(settings: Settings, collection: str) -> Path:
    """Ingestion state lives beside the data even when the store is a remote server."""
    return settings.data_dir / "state" / f"{collection}.sqlite"
