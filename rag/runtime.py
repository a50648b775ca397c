"""Builds the configured components from Settings: the one place where choices are made."""

from __future__ import annotations

from pathlib import Path

from rag.config import Settings
from rag.embedding import Embedder
from rag.embedding import auto_embedding_backend as auto_embedding_backend
from rag.embedding import build_embedder as build_embedder
from rag.generation import Generator, PassageJudge
from rag.rerank import CrossEncoderReranker, Reranker
from rag.store.base import CollectionInfo, VectorStore
from rag.store.factory import open_store


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
