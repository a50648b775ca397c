"""The OpenAI wire format around rag.chat and the embedder: model ids, parameter checks,
chat.completion objects, server-sent events, embeddings.

Model ids are 'rag-<collection>': a chat client's model picker picks the collection.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from rag.api.openai_schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    Choice,
    ChunkChoice,
    Delta,
    EmbeddingItem,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingUsage,
    ModelCard,
    ModelList,
    RagInfo,
    Usage,
)
from rag.api.schemas import CitationModel
from rag.api.state import ServiceState
from rag.catalog import list_collections
from rag.chat import ChatDelta, ChatEvent, ChatOptions, ChatResult, ChatService
from rag.config import Settings
from rag.conversation import Turn
from rag.errors import RagError

log = logging.getLogger(__name__)

MODEL_PREFIX = "rag-"
_MAX_STOP_SEQUENCES = 4


class OpenAIError(Exception):
    """An error with OpenAI's status, type, param and code; rendered by the app."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.param = param
        self.code = code


def error_body(message: str, kind: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


# --- models ------------------------------------------------------------------------------


def model_id(collection: str) -> str:
    return f"{MODEL_PREFIX}{collection}"


def collections(settings: Settings) -> list[str]:
    """The collections there are, the configured one always among them."""
    names = set(list_collections(settings))
    names.add(settings.collection)
    return sorted(names)


def list_models(state: ServiceState) -> ModelList:
    return ModelList(
        data=[ModelCard(id=model_id(c), created=state.started) for c in collections(state.settings)]
    )


def _model_not_found(model: str, settings: Settings) -> OpenAIError:
    known = ", ".join(model_id(c) for c in collections(settings))
    return OpenAIError(
        404,
        f"The model '{model}' does not exist. Models here are 'rag-<collection>': {known}.",
        param="model",
        code="model_not_found",
    )


def collection_for(model: str, settings: Settings) -> str:
    """The collection a model id names, or 404 model_not_found."""
    name = model.removeprefix(MODEL_PREFIX) if model.startswith(MODEL_PREFIX) else None
    if name == settings.collection:
        return name  # no listing needed for the usual case
    if name is None or name not in collections(settings):
        raise _model_not_found(model, settings)
    return name


def get_model(model: str, state: ServiceState) -> ModelCard:
    collection_for(model, state.settings)
    return ModelCard(id=model, created=state.started)


# --- chat completions --------------------------------------------------------------------


def chat_options(body: ChatCompletionRequest) -> ChatOptions:
    """Refuse what cannot be honoured, as OpenAI refuses unsupported parameters."""
    if body.n is not None and body.n > 1:
        raise OpenAIError(
            400,
            "n > 1 is not supported: answers are deterministic.",
            param="n",
            code="unsupported_value",
        )
    if body.logprobs or body.top_logprobs:
        param = "logprobs" if body.logprobs else "top_logprobs"
        raise OpenAIError(
            400, "logprobs are not supported.", param=param, code="unsupported_parameter"
        )
    kind = (body.response_format or {}).get("type", "text")
    if kind != "text":
        raise OpenAIError(
            400,
            f"response_format {kind!r} is not supported: answers are cited text.",
            param="response_format",
            code="unsupported_value",
        )
    # Tools are accepted and never called; a request that forces a call cannot be served.
    if body.tool_choice not in (None, "auto", "none"):
        raise OpenAIError(
            400, "this model does not call tools.", param="tool_choice", code="unsupported_value"
        )
    if body.function_call not in (None, "auto", "none"):
        raise OpenAIError(
            400,
            "this model does not call functions.",
            param="function_call",
            code="unsupported_value",
        )
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stop) > _MAX_STOP_SEQUENCES:
        raise OpenAIError(400, "stop takes at most 4 sequences.", param="stop")
    return ChatOptions(max_tokens=body.max_completion_tokens or body.max_tokens, stop=stop)


def to_turns(messages: Sequence[ChatMessage]) -> list[Turn]:
    """Text of each message; 'developer' counts as 'system'; tool results are left out."""
    turns: list[Turn] = []
    for i, message in enumerate(messages):
        if message.role in ("tool", "function"):
            continue
        content = message.content
        if isinstance(content, list):
            for part in content:
                if part.type != "text":
                    raise OpenAIError(
                        400,
                        f"content parts of type {part.type!r} are not supported; send text.",
                        param=f"messages.[{i}].content",
                        code="unsupported_value",
                    )
            text = "\n".join(part.text or "" for part in content)
        else:
            text = content or ""
        if message.role in ("system", "developer"):
            turns.append(Turn("system", text))
        elif message.role == "user":
            turns.append(Turn("user", text))
        else:
            turns.append(Turn("assistant", text))
    return turns


def _citations(result: ChatResult) -> list[CitationModel]:
    return [CitationModel.model_validate(asdict(c)) for c in result.answer.citations]


def _rag_info(result: ChatResult) -> RagInfo:
    return RagInfo(
        retrieval_query=result.retrieval_query,
        abstained=result.answer.abstained,
        extractive=result.answer.extractive,
        timings=result.answer.timings,
    )


def _usage(result: ChatResult) -> Usage:
    return Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )


def start_chat(body: ChatCompletionRequest, state: ServiceState) -> tuple[ChatService, Any]:
    """Check the request and retrieve: every 4xx is raised here, before any stream starts."""
    collection = collection_for(body.model, state.settings)
    options = chat_options(body)
    turns = to_turns(body.messages)
    service = ChatService(state.answerer(collection), state.settings)
    return service, service.prepare(turns, options=options, source_prefix=body.source_prefix)


def chat_completion(body: ChatCompletionRequest, state: ServiceState) -> ChatCompletion:
    service, chat = start_chat(body, state)
    result = service.complete(chat)
    return ChatCompletion(
        id=new_completion_id(),
        created=int(time.time()),
        model=body.model,
        choices=[
            Choice(
                message=AssistantMessage(content=result.content),
                finish_reason=result.finish_reason,
            )
        ],
        usage=_usage(result),
        citations=_citations(result),
        rag=_rag_info(result),
    )


def chat_completion_stream(body: ChatCompletionRequest, state: ServiceState) -> Iterator[str]:
    service, chat = start_chat(body, state)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    events = service.stream(chat, mode=state.settings.stream_mode)
    return sse_events(events, model=body.model, include_usage=include_usage)


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


def _chunk_json(chunk: ChatCompletionChunk, *, include_usage: bool) -> dict[str, Any]:
    data = chunk.model_dump(mode="json")
    for choice in data["choices"]:  # OpenAI's deltas hold only what changed: {} at the end
        choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
    for key in ("citations", "rag"):
        if data[key] is None:
            del data[key]
    if not include_usage:
        del data["usage"]  # OpenAI sends "usage": null on every chunk only when asked for it
    return data


def sse_events(events: Iterator[ChatEvent], *, model: str, include_usage: bool) -> Iterator[str]:
    """chat.completion.chunk events as OpenAI sends them, then ``data: [DONE]``.

    The first chunk carries the role, the content chunks the text, the chunk with the
    finish_reason the citations (once), and with include_usage a last chunk with no choices
    carries the usage. An error after the stream started is sent as an error event.
    """
    completion_id = new_completion_id()
    created = int(time.time())

    def chunk(choices: list[ChunkChoice], **extra: Any) -> str:
        made = ChatCompletionChunk(
            id=completion_id, created=created, model=model, choices=choices, **extra
        )
        return sse(_chunk_json(made, include_usage=include_usage))

    yield chunk([ChunkChoice(delta=Delta(role="assistant", content=""))])
    try:
        for event in events:
            if isinstance(event, ChatDelta):
                yield chunk([ChunkChoice(delta=Delta(content=event.text))])
                continue
            yield chunk(
                [ChunkChoice(delta=Delta(), finish_reason=event.finish_reason)],
                citations=_citations(event),
                rag=_rag_info(event),
            )
            if include_usage:
                yield chunk([], usage=_usage(event))
    except RagError as exc:
        log.error("streamed answer failed: %s", exc)
        yield sse(error_body(str(exc), "server_error", None, None))
        return
    except Exception:
        log.exception("streamed answer failed")
        yield sse(error_body("internal error while answering", "server_error", None, None))
        return
    yield sse("[DONE]")


# --- embeddings --------------------------------------------------------------------------


def _check_embedding_model(model: str, state: ServiceState) -> None:
    names = {state.settings.embedding_model, state.embedder.model_name}
    if model in names:
        return
    if model.startswith(MODEL_PREFIX) and model.removeprefix(MODEL_PREFIX) in collections(
        state.settings
    ):
        return
    raise OpenAIError(
        404,
        f"The model '{model}' does not exist. Embeddings take a 'rag-<collection>' id or "
        f"'{state.settings.embedding_model}'.",
        param="model",
        code="model_not_found",
    )


def _texts(body: EmbeddingRequest, settings: Settings) -> list[str]:
    raw = body.input
    texts: list[Any] = [raw] if isinstance(raw, str) else list(raw)
    if not texts:
        raise OpenAIError(400, "input is empty.", param="input")
    if any(not isinstance(t, str) for t in texts):
        raise OpenAIError(
            400,
            "token arrays are not supported: send text (LangChain: "
            "OpenAIEmbeddings(check_embedding_ctx_length=False)).",
            param="input",
            code="unsupported_value",
        )
    if len(texts) > settings.embedding_max_inputs:
        raise OpenAIError(
            400,
            f"input has {len(texts)} texts; the limit is {settings.embedding_max_inputs} "
            "(RAG_EMBEDDING_MAX_INPUTS).",
            param="input",
        )
    for i, text in enumerate(texts):
        if not text.strip():
            raise OpenAIError(400, f"input[{i}] is empty.", param="input")
        if len(text) > settings.embedding_max_input_chars:
            raise OpenAIError(
                400,
                f"input[{i}] has {len(text)} characters; the limit is "
                f"{settings.embedding_max_input_chars} (RAG_EMBEDDING_MAX_INPUT_CHARS).",
                param="input",
            )
    return texts


def encode_vector(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        # As OpenAI: the little-endian float32 bytes, base64-encoded.
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in np.asarray(vector, dtype=np.float32).tolist()]


def create_embeddings(body: EmbeddingRequest, state: ServiceState) -> EmbeddingResponse:
    _check_embedding_model(body.model, state)
    embedder = state.embedder
    if body.dimensions is not None and body.dimensions != embedder.dimension:
        # all-MiniLM-L6-v2 was not trained to be cut short (no Matryoshka training).
        raise OpenAIError(
            400,
            f"dimensions must be {embedder.dimension}, the model's dimension; this model's "
            "vectors cannot be shortened.",
            param="dimensions",
            code="unsupported_value",
        )
    texts = _texts(body, state.settings)
    vectors = embedder.embed_documents(texts)
    tokens = sum(embedder.count_tokens(t) for t in texts)
    return EmbeddingResponse(
        data=[
            EmbeddingItem(index=i, embedding=encode_vector(v, body.encoding_format))
            for i, v in enumerate(vectors)
        ],
        model=body.model,
        usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
    )
