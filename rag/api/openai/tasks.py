"""Chat frontends' background tasks on /v1/chat/completions (rag.tasks), as OpenAI replies.

A task is recognised before the request queues for the model. A title written by the model
(RAG_TASK_TITLES) takes a generation slot at the lowest priority (rag.api.admission), so every
question waiting is served first; the other tasks are answered by rules and take no slot.
A task's prompt quotes the conversation, so its length limit is its own
(RAG_MAX_TASK_PROMPT_CHARS). The reply, whole or streamed, carries only the text the frontend
parses: no citations, no Sources footer, no ``rag`` field.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from anyio import to_thread
from fastapi import Request

from rag.api.admission import GenerationGate
from rag.api.errors import OpenAIError
from rag.api.openai.chat import (
    chat_options,
    check_sizes,
    new_completion_id,
    sse_reply,
    to_turns,
)
from rag.api.openai.models import collection_for
from rag.api.openai.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    Usage,
)
from rag.api.state import ServiceState
from rag.config import Settings
from rag.generation import Generator
from rag.tasks import Task, TaskAnswerer, recognise_task

log = logging.getLogger(__name__)


def recognise(body: ChatCompletionRequest, settings: Settings) -> Task | None:
    """The background task the request carries, or None for a question. A task is checked as
    any chat request is (sizes, model, parameters; a JSON response_format is welcome), and
    its prompt against RAG_MAX_TASK_PROMPT_CHARS."""
    check_sizes(body, settings)
    turns = to_turns(body.messages)
    task = recognise_task(turns)
    if task is None:
        return None
    collection_for(body.model, settings)
    chat_options(body.model_copy(update={"response_format": None}))
    longest = max(len(t.content) for t in turns)
    if longest > settings.max_task_prompt_chars:
        raise OpenAIError(
            400,
            f"messages: the {task.frontend} {task.kind} prompt has {longest} characters; the "
            f"limit is {settings.max_task_prompt_chars} (RAG_MAX_TASK_PROMPT_CHARS).",
            param="messages",
        )
    return task


async def answer_task(
    task: Task,
    body: ChatCompletionRequest,
    state: ServiceState,
    gate: GenerationGate,
    request: Request,
) -> ChatCompletion | Iterator[str]:
    """The reply: a chat.completion, or the server-sent events of one when streamed."""
    prompt_text = "\n".join(_texts(body))
    uses_model = task.kind == "title" and titles_by_model(state.settings)

    def work(cancel: threading.Event | None) -> tuple[str, Usage]:
        generator: Generator | None = None
        if uses_model:
            generator = state.task_generator(cancel)
        content = TaskAnswerer(generator).answer(task)
        count = state.generator.count_tokens
        prompt, completion = count(prompt_text), count(content)
        return content, Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )

    started = time.perf_counter()
    if uses_model:
        content, usage = await gate.call(request, work, priority="task")
    else:
        content, usage = await to_thread.run_sync(work, None)
    log.info(
        "answered %s's %s task in %.0f ms",
        task.frontend,
        task.kind,
        (time.perf_counter() - started) * 1000,
    )
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return sse_reply(content, model=body.model, usage=usage if include_usage else None)
    return ChatCompletion(
        id=new_completion_id(),
        created=int(time.time()),
        model=body.model,
        choices=[Choice(message=AssistantMessage(content=content), finish_reason="stop")],
        usage=usage,
    )


def titles_by_model(settings: Settings) -> bool:
    """Whether the language model writes a chat's title (RAG_TASK_TITLES)."""
    if settings.task_titles == "auto":
        return settings.generator == "openai"
    return settings.task_titles == "model"


def _texts(body: ChatCompletionRequest) -> list[str]:
    texts: list[str] = []
    for message in body.messages:
        content = message.content
        if isinstance(content, list):
            texts.extend(part.text or "" for part in content)
        elif content:
            texts.append(content)
    return texts
