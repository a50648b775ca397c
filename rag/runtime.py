"""Builds the configured components from Settings: the one place where choices are made."""

from __future__ import annotations

from pathlib import Path

from rag.config import Settings
from rag.embedding import Embedder, SentenceTransformerEmbedder
from rag.generation import Generator
from rag.models import gpu_present
from rag.rerank import CrossEncoderReranker, Reranker
from rag.store.base import CollectionInfo, VectorStore
from rag.store.factory import open_store


def build_embedder(settings: Settings) -> Embedder:
    backend = settings.embedding_backend
    if backend == "auto":
        backend = "torch" if gpu_present(settings.device) else "onnx-int8"
    if backend == "torch":
        return SentenceTransformerEmbedder(
            settings.embedding_model,
            device=settings.device,
            batch_size=settings.embedding_batch_size,
        )
    from rag.onnx_embedding import OnnxEmbedder

    return OnnxEmbedder(
        settings.embedding_model,
        cache_dir=settings.models_dir,
        backend=backend,
        batch_size=settings.embedding_batch_size,
    )


def build_generator(settings: Settings) -> Generator:
    if settings.generator == "openai":
        from rag.generation.openai import OpenAIChatGenerator

        return OpenAIChatGenerator.from_settings(settings)
    from rag.generation.local import TransformersGenerator

    return TransformersGenerator(
        settings.llm_model, cache_dir=settings.models_dir, device=settings.device
    )


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
