"""A generator that calls any OpenAI-compatible chat server (Ollama, vLLM, llama.cpp, ...)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence

import httpx

from rag.config import Settings
from rag.errors import ModelError
from rag.generation import Message

log = logging.getLogger(__name__)

_CHARS_PER_TOKEN = 4  # the server's tokenizer is not ours: estimate, and budget with margin


class OpenAIChatGenerator:
    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 120.0,
        context_window: int = 8192,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)
        self._model = model
        self._window = context_window

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIChatGenerator:
        assert settings.openai_base_url and settings.openai_model  # checked by Settings
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return cls(
            base_url=settings.openai_base_url,
            model=settings.openai_model,
            api_key=key,
            timeout=settings.openai_timeout,
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

    def stream(self, messages: Sequence[Message], *, max_new_tokens: int) -> Iterator[str]:
        body = {
            "model": self._model,
            "messages": list(messages),
            "max_tokens": max_new_tokens,
            "temperature": 0,
            "stream": True,
        }
        try:
            with self._client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ModelError(
                        f"chat server {self._client.base_url} answered {response.status_code}: "
                        f"{response.text[:300]}"
                    )
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    for choice in event.get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            yield piece
        except httpx.HTTPError as exc:
            raise ModelError(f"chat server {self._client.base_url} failed: {exc}") from exc
