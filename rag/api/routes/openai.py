"""The OpenAI-compatible API: models, chat completions (streamed or not), embeddings.

Thin: parse, call rag.api.openai, return. Keys are checked by the router's dependency
(require_key), as on every /v1 route.
"""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from rag.api.deps import GateDep, SearchLimiterDep, StateDep
from rag.api.openai import chat, models, tasks
from rag.api.openai.embeddings import create_embeddings
from rag.api.openai.schemas import (
    ChatCompletion,
    ChatCompletionRequest,
    EmbeddingRequest,
    EmbeddingResponse,
    ModelCard,
    ModelList,
)
from rag.api.openai.sources import wants_source_events
from rag.api.schemas import ErrorResponse

router = APIRouter(
    prefix="/v1",
    tags=["openai"],
    responses={
        400: {"model": ErrorResponse},
        401: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)

_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.get("/models", response_model=ModelList)
def list_models(state: StateDep) -> ModelList:
    """One model per collection, 'rag-<collection>'."""
    return models.list_models(state)


@router.get("/models/{model}", response_model=ModelCard)
def get_model(model: str, state: StateDep) -> ModelCard:
    return models.get_model(model, state)


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        200: {"content": {"text/event-stream": {}}},
        429: {"model": ErrorResponse, "description": "The generation queue is full."},
    },
)
async def chat_completions(
    body: ChatCompletionRequest, state: StateDep, gate: GateDep, request: Request
) -> ChatCompletion | StreamingResponse:
    """Answer the conversation's last question from the collection the model names, with
    [n] citations in the text, a Sources footer, and a structured ``citations`` field (and
    Open WebUI's source events, RAG_SOURCE_EVENTS). Generation requests queue for the model
    (RAG_GENERATION_QUEUE); past the queue's bound or its wait limit the answer is 429 with
    Retry-After. A chat frontend's background task (a title, tags, follow-ups, queries) is
    answered without retrieval, after every question waiting."""
    task = tasks.recognise(body, state.settings)
    if task is not None:
        reply = await tasks.answer_task(task, body, state, gate, request)
        if isinstance(reply, ChatCompletion):
            return reply
        return StreamingResponse(reply, media_type="text/event-stream", headers=_SSE_HEADERS)
    sources = wants_source_events(state.settings, request.headers)
    if body.stream:
        return await gate.stream(
            lambda cancel: chat.chat_completion_stream(body, state, cancel, source_events=sources),
            media_type="text/event-stream",
            headers=_SSE_HEADERS,
        )
    return await gate.call(
        request, lambda cancel: chat.chat_completion(body, state, cancel, source_events=sources)
    )


@router.post("/embeddings", response_model=EmbeddingResponse)
async def embeddings(
    body: EmbeddingRequest, state: StateDep, limiter: SearchLimiterDep
) -> EmbeddingResponse:
    """Vectors from the embedding model, as floats or base64 (little-endian float32). At most
    RAG_SEARCH_CONCURRENCY embedding and search requests run at once."""
    return await to_thread.run_sync(create_embeddings, body, state, limiter=limiter)
