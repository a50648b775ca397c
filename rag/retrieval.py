"""Question -> hybrid search in Qdrant (dense + BM25, fused by RRF inside Qdrant) -> hits."""

from __future__ import annotations

import logging

from rag.config import Settings
from rag.embedding import Embedder
from rag.errors import InvalidInputError
from rag.store.base import SearchQuery, VectorStore
from rag.types import Hit

log = logging.getLogger(__name__)


def check_question(question: str, *, max_chars: int) -> str:
    text = question.strip()
    if not text:
        raise InvalidInputError("the question is empty", field="question")
    if len(text) > max_chars:
        raise InvalidInputError(
            f"the question has {len(text)} characters; the limit is {max_chars} "
            "(RAG_MAX_QUESTION_CHARS)",
            field="question",
        )
    return text


class HybridRetriever:
    def __init__(self, embedder: Embedder, store: VectorStore, settings: Settings) -> None:
        self._embedder = embedder
        self._store = store
        self._settings = settings

    @property
    def store(self) -> VectorStore:
        return self._store

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    def search(
        self, question: str, *, k: int | None = None, source_prefix: str | None = None
    ) -> list[Hit]:
        text = check_question(question, max_chars=self._settings.max_question_chars)
        if k is not None and not 1 <= k <= 100:
            raise InvalidInputError(f"k must be between 1 and 100, got {k}", field="k")
        query = SearchQuery(
            text=text,
            vector=self._embedder.embed_query(text),
            k=k or self._settings.top_k,
            prefetch_k=max(self._settings.prefetch_k, k or 0),
            fusion=self._settings.fusion,
            rrf_k=self._settings.rrf_k,
            source_prefix=source_prefix or None,
        )
        return self._store.search(query)
