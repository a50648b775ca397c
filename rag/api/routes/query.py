"""The REST API's own routes: answer a question, search chunks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict

from anyio import to_thread
from fastapi import APIRouter, Request

from ingest.source_names import names_for
from rag.api.deps import GateDep, SearchLimiterDep, StateDep
from rag.api.schemas import (
    CitationModel,
    ErrorResponse,
    QueryRequest,
    QueryResponse,
    SearchHit,
    SearchRequest,
    SearchResponse,
)
from rag.api.state import ServiceState
from rag.display import hit_json
from rag.types import Answer

router = APIRouter(
    prefix="/v1",
    tags=["rag"],
    responses={
        400: {"model": ErrorResponse},
        401: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        409: {"model": ErrorResponse},
    },
)


@router.post(
    "/query",
    response_model=QueryResponse,
    responses={429: {"model": ErrorResponse, "description": "The generation queue is full."}},
)
async def query(
    body: QueryRequest, state: StateDep, gate: GateDep, request: Request
) -> QueryResponse:
    """Answer from the documents with [n] citations, or abstain when nothing is relevant.
    Generation requests queue for the model (RAG_GENERATION_QUEUE); past the queue's bound
    or its wait limit the answer is 429 with Retry-After."""

    def answer_it(cancel: threading.Event) -> tuple[Answer, Callable[[str], str]]:
        answerer = state.answerer(body.collection, cancel=cancel)
        answer = answerer.ask(body.question, source_prefix=body.source_prefix)
        return answer, names_for(state.settings, body.collection or state.settings.collection)

    answer, names = await gate.call(request, answer_it)
    return QueryResponse(
        answer=answer.answer,
        citations=[
            CitationModel.model_validate(asdict(c) | {"display_source": names(c.source)})
            for c in answer.citations
        ],
        abstained=answer.abstained,
        extractive=answer.extractive,
        timings=answer.timings,
    )


@router.post("/search", response_model=SearchResponse)
async def search(body: SearchRequest, state: StateDep, limiter: SearchLimiterDep) -> SearchResponse:
    """Hybrid search (dense + BM25, fused inside Qdrant): scored chunks, no generation.
    At most RAG_SEARCH_CONCURRENCY searches run at once; the others wait their turn."""
    return await to_thread.run_sync(_search, body, state, limiter=limiter)


def _search(body: SearchRequest, state: ServiceState) -> SearchResponse:
    started = time.perf_counter()
    hits = state.retriever(body.collection).search(
        body.query, k=body.k, source_prefix=body.source_prefix
    )
    names = names_for(state.settings, body.collection or state.settings.collection)
    return SearchResponse(
        hits=[SearchHit(**hit_json(h, names)) for h in hits],
        timings={"total_ms": (time.perf_counter() - started) * 1000},
    )
