"""/v1/chat/completions: OpenAI's chat API around rag.chat, whole or as server-sent events.

Every 4xx is raised before a stream starts: the request is checked, the conversation read and
the retrieval done first. A streamed answer is a run of chat.completion.chunk events ending in
``data: [DONE]``; an error after the stream started ends it with an error event instead.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, replace
from typing import Any

from ingest.source_names import names_for
from rag.api.errors import SERVER_ERROR, OpenAIError, error_body
from rag.api.openai.models import collection_for
from rag.api.openai.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    Choice,
    ChunkChoice,
    Delta,
    RagInfo,
    Usage,
)
from rag.api.openai.sources import open_webui_sources, source_event
from rag.api.schemas import CitationModel
from rag.api.state import ServiceState
from rag.chat import (
    ChatDelta,
    ChatEvent,
    ChatOptions,
    ChatPrepared,
    ChatResult,
    ChatService,
)
from rag.config import Settings
from rag.conversation import Turn
from rag.display import FILE_NAMES
from rag.errors import RagError
from rag.generation.cancel import GenerationCancelled

log = logging.getLogger(__name__)


def _message_chars(message: ChatMessage) -> int:
    content = message.content
    if isinstance(content, list):
        return sum(len(part.text or "") for part in content)
    return len(content or "")


def check_sizes(body: ChatCompletionRequest, settings: Settings) -> None:
    """Refuse a request past the count and size limits of its messages and stop sequences
    (RAG_CHAT_MAX_MESSAGES, RAG_CHAT_MAX_CHARS, RAG_CHAT_MAX_STOP, RAG_CHAT_MAX_STOP_CHARS)."""
    if len(body.messages) > settings.chat_max_messages:
        raise OpenAIError(
            400,
            f"messages has {len(body.messages)} messages; the limit is "
            f"{settings.chat_max_messages} (RAG_CHAT_MAX_MESSAGES).",
            param="messages",
        )
    chars = sum(_message_chars(m) for m in body.messages)
    if chars > settings.chat_max_chars:
        raise OpenAIError(
            413,
            f"messages hold {chars} characters; the limit is {settings.chat_max_chars} "
            "(RAG_CHAT_MAX_CHARS).",
            param="messages",
            code="context_length_exceeded",
        )
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stop) > settings.chat_max_stop:
        raise OpenAIError(
            400,
            f"stop takes at most {settings.chat_max_stop} sequences (RAG_CHAT_MAX_STOP).",
            param="stop",
        )
    if sum(len(s) for s in stop) > settings.chat_max_stop_chars:
        raise OpenAIError(
            400,
            f"stop sequences hold at most {settings.chat_max_stop_chars} characters together "
            "(RAG_CHAT_MAX_STOP_CHARS).",
            param="stop",
        )


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


def citation_models(result: ChatResult, names: Callable[[str], str]) -> list[CitationModel]:
    return [
        CitationModel.model_validate(asdict(c) | {"display_source": names(c.source)})
        for c in result.answer.citations
    ]


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


def start_chat(
    body: ChatCompletionRequest,
    state: ServiceState,
    cancel: threading.Event | None = None,
    *,
    footer: bool = True,
) -> tuple[ChatService, ChatPrepared]:
    """Check the request and retrieve: every 4xx is raised here, before any stream starts.
    Once ``cancel`` is set, the generation stops at its next token (GenerationCancelled).
    ``footer``: end the text with the Markdown Sources footer."""
    check_sizes(body, state.settings)
    collection = collection_for(body.model, state.settings)
    options = replace(chat_options(body), footer=footer)
    turns = to_turns(body.messages)
    service = ChatService(
        state.answerer(collection, cancel=cancel),
        state.settings,
        names=names_for(state.settings, collection),
    )
    return service, service.prepare(turns, options=options, source_prefix=body.source_prefix)


def chat_completion(
    body: ChatCompletionRequest,
    state: ServiceState,
    cancel: threading.Event | None = None,
    *,
    source_events: bool = False,
) -> ChatCompletion:
    """``source_events``: also give the citations as Open WebUI's ``sources`` (which it shows
    in its own panel, so the text has no Sources footer)."""
    service, chat = start_chat(body, state, cancel, footer=not source_events)
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
        citations=citation_models(result, service.names),
        rag=_rag_info(result),
        sources=open_webui_sources(result.answer.citations, service.names)
        if source_events
        else None,
    )


def chat_completion_stream(
    body: ChatCompletionRequest,
    state: ServiceState,
    cancel: threading.Event | None = None,
    *,
    source_events: bool = False,
) -> Iterator[str]:
    """``source_events``: one chunk per citation carries it as Open WebUI's source event
    (which it shows in its own panel, so the text has no Sources footer)."""
    service, chat = start_chat(body, state, cancel, footer=not source_events)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    events = service.stream(chat)
    return sse_events(
        events,
        model=body.model,
        include_usage=include_usage,
        names=service.names,
        source_events=source_events,
    )


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


def _chunk_json(chunk: ChatCompletionChunk, *, include_usage: bool) -> dict[str, Any]:
    data = chunk.model_dump(mode="json")
    for choice in data["choices"]:  # OpenAI's deltas hold only what changed: {} at the end
        choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
    for key in ("citations", "rag", "event"):
        if data[key] is None:
            del data[key]
    if not include_usage:
        del data["usage"]  # OpenAI sends "usage": null on every chunk only when asked for it
    return data


def sse_events(
    events: Iterator[ChatEvent],
    *,
    model: str,
    include_usage: bool,
    names: Callable[[str], str] = FILE_NAMES,
    source_events: bool = False,
) -> Iterator[str]:
    """chat.completion.chunk events as OpenAI sends them, then ``data: [DONE]``.

    The first chunk carries the role, the content chunks the text, the chunk with the
    finish_reason the citations (once), and with include_usage a last chunk with no choices
    carries the usage. With ``source_events``, a chunk with no choices before the
    finish_reason's carries each citation as Open WebUI's source event. ``names``: how a
    citation's file is shown. An error after the stream started is sent as an error event.
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
            if source_events:
                for source in open_webui_sources(event.answer.citations, names):
                    yield chunk([], event=source_event(source))
            yield chunk(
                [ChunkChoice(delta=Delta(), finish_reason=event.finish_reason)],
                citations=citation_models(event, names),
                rag=_rag_info(event),
            )
            if include_usage:
                yield chunk([], usage=_usage(event))
    except GenerationCancelled:
        return  # nobody is reading any more
    except RagError as exc:
        log.error("streamed answer failed: %s", exc)
        yield sse(error_body(str(exc), SERVER_ERROR))
        return
    except Exception:
        log.exception("streamed answer failed")
        yield sse(error_body("internal error while answering", SERVER_ERROR))
        return
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()  # a reader that stops ends the generation
    yield sse("[DONE]")


def sse_reply(content: str, *, model: str, usage: Usage | None) -> Iterator[str]:
    """A whole reply as OpenAI streams one: the role, the text, the finish_reason, the usage
    when asked for (``usage`` not None), then ``data: [DONE]``."""
    completion_id = new_completion_id()
    created = int(time.time())
    include_usage = usage is not None

    def chunk(choices: list[ChunkChoice], **extra: Any) -> str:
        made = ChatCompletionChunk(
            id=completion_id, created=created, model=model, choices=choices, **extra
        )
        return sse(_chunk_json(made, include_usage=include_usage))

    yield chunk([ChunkChoice(delta=Delta(role="assistant", content=""))])
    if content:
        yield chunk([ChunkChoice(delta=Delta(content=content))])
    yield chunk([ChunkChoice(delta=Delta(), finish_reason="stop")])
    if usage is not None:
        yield chunk([], usage=usage)
    yield sse("[DONE]")
