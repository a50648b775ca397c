"""Builds the query side from Settings: generator, judge, reranker, retriever, answerer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rag.answering import Answerer
from rag.catalog import open_collection
from rag.config import Settings
from rag.embedding import Embedder, build_embedder
from rag.generation import Generator, PassageJudge
from rag.rerank import CrossEncoderReranker, Reranker
from rag.retrieval import HybridRetriever


def build_generator(settings: Settings) -> Generator:
    if settings.generator == "openai":
        from rag.generation.openai import OpenAIChatGenerator

        return OpenAIChatGenerator.from_settings(settings)
    from rag.generation.local import TransformersGenerator

    return TransformersGenerator(
        settings.llm_model,
        cache_dir=settings.models_dir,
        device=settings.device,
        max_batch_size=settings.llm_batch_size,
        max_batch_tokens=settings.llm_batch_tokens,
        dtype=settings.llm_dtype,
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


@contextmanager
def open_retriever(
    settings: Settings, embedder: Embedder | None = None
) -> Iterator[HybridRetriever]:
    """A retriever over the configured collection, closed on exit."""
    embedder = embedder or build_embedder(settings)
    store = open_collection(settings, embedder)
    try:
        yield HybridRetriever(embedder, store, settings, build_reranker(settings))
    finally:
        store.close()


@contextmanager
def open_answerer(settings: Settings, generator: Generator | None = None) -> Iterator[Answerer]:
    """An answerer over the configured collection, closed on exit."""
    with open_retriever(settings) as retriever:
        generator = generator or build_generator(settings)
        yield Answerer(retriever, generator, settings, build_judge(settings, generator))
