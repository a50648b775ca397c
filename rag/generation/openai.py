"""A generator that calls any OpenAI-compatible chat server (Ollama, vLLM, llama.cpp, ...)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from rag.config import Settings
from rag.errors import ModelError
from rag.generation import Message

log = logging.getLogger(__name__)

_CHARS_PER_TOKEN = 4  # the server's tokenizer is not ours: estimate, and budget with margin


class OpenAIChatGenerator:
    """Streams from ``POST {base_url}/chat/completions``.

    Every failure (unreachable server, an error status, an error event inside the stream,
    a malformed event) becomes a ModelError naming the server, never a bare exception. At most
    ``concurrency`` requests are open at once; more wait their turn here, not at the server.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 120.0,
        context_window: int = 8192,
        concurrency: int = 4,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        # httpx joins a relative path onto the base URL's path: {base}/v1 + chat/completions.
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            timeout=timeout,
            transport=transport,
        )
        self._model = model
        self._window = context_window
        self._open = threading.BoundedSemaphore(concurrency)

    def warm_up(self) -> None:
        """Nothing loads here: the server holds the model."""

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIChatGenerator:
        if not (settings.openai_base_url and settings.openai_model):
            raise ModelError("generator='openai' needs RAG_OPENAI_BASE_URL and RAG_OPENAI_MODEL")
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return cls(
            base_url=settings.openai_base_url,
            model=settings.openai_model,
            api_key=key,
            timeout=settings.openai_timeout,
            concurrency=settings.openai_concurrency,
        )

    @property
    def model_name(self) -> str:
        return self._model

    @property
    def context_window(self) -> int:
        return self._window

    def count_tokens(self, text: str) -> int:
        return len(text) // _CHARS_PER_TOKEN + 1

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        return sum(self.count_tokens(m["content"]) + 4 for m in messages)

    def close(self) -> None:
        self._client.close()

    def _where(self) -> str:
        return f"chat server {self._client.base_url}"

    def stream(self, messages: Sequence[Message], *, max_new_tokens: int) -> Iterator[str]:
        body = {
            "model": self._model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "max_tokens": max_new_tokens,
            "temperature": 0,
            "stream": True,
        }
        with self._open:
            yield from self._request(body)

    def _request(self, body: dict[str, Any]) -> Iterator[str]:
        try:
            with self._client.stream("POST", "chat/completions", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ModelError(
                        f"{self._where()} answered {response.status_code}: "
                        f"{_error_message(response.text)}"
                    )
                if response.headers.get("content-type", "").startswith("application/json"):
                    # A server that ignores "stream": true answers with one chat.completion.
                    response.read()
                    yield from self._pieces(_parse(response.text, self._where()))
                    return
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue  # blank separators, ": keep-alive" comments, "event:" lines
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    yield from self._pieces(_parse(data, self._where()))
        except httpx.HTTPError as exc:
            raise ModelError(f"{self._where()} failed: {exc}") from exc

    def _pieces(self, event: dict[str, Any]) -> Iterator[str]:
        if event.get("error"):
            raise ModelError(f"{self._where()} reported: {_error_message(event)}")
        for choice in event.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            # "delta" in a stream, "message" in a whole completion; reasoning is not answer.
            part = choice.get("delta") or choice.get("message") or {}
            piece = part.get("content") if isinstance(part, dict) else None
            if isinstance(piece, str) and piece:
                yield piece


def _parse(data: str, where: str) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ModelError(f"{where} sent something that is not JSON: {data[:200]!r}") from exc
    if not isinstance(event, dict):
        raise ModelError(f"{where} sent an unexpected event: {data[:200]!r}")
    return event


def _error_message(body: str | dict[str, Any]) -> str:
    """The message of an OpenAI-style error body, or the start of the text."""
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError:
            return body[:300]
        if not isinstance(parsed, dict):
            return body[:300]
        body = parsed
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])[:300]
    return str(error or body)[:300]
