"""OpenAIChatGenerator (rag.generation.openai): the stream it reads, against a scripted
transport, then against this service's own OpenAI API as its upstream."""

from __future__ import annotations

import json

import httpx
import pytest

from rag.errors import ModelError
from rag.generation.openai import OpenAIChatGenerator
from tests.conftest import LiveServer

LIGHTHOUSE = "How far can the Lighthouse beam be seen?"


def test_openai_generator_reports_errors_inside_the_stream_and_bad_events() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["stream"] is True and body["max_tokens"] == 7
        if body["messages"][0]["content"] == "error event":
            text = (
                'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n'
                'data: {"error":{"message":"overloaded"}}\n\n'
            )
        elif body["messages"][0]["content"] == "garbage":
            text = "data: {not json\n\n"
        else:
            text = (
                ': keep-alive\n\ndata:{"choices":[{"delta":{"role":"assistant"}}]}\n\n'
                'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n'
                'data: {"choices":[{"delta":{"content":"lo"}}]}\n\n'
                'data: {"choices":[],"usage":{"prompt_tokens":1}}\n\ndata: [DONE]\n\n'
            )
        return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})

    generator = OpenAIChatGenerator(
        base_url="http://upstream.test/v1", model="m", transport=httpx.MockTransport(handler)
    )
    ask = lambda text: list(  # noqa: E731
        generator.stream([{"role": "user", "content": text}], max_new_tokens=7)
    )
    assert ask("hello") == ["Hel", "lo"]
    with pytest.raises(ModelError, match="overloaded"):
        ask("error event")
    with pytest.raises(ModelError, match="not JSON"):
        ask("garbage")


@pytest.mark.real_models
def test_openai_generator_streams_from_this_service_as_upstream(live_server: LiveServer) -> None:
    upstream, key = f"{live_server.url}/v1", live_server.key
    generator = OpenAIChatGenerator(base_url=upstream, model="rag-default", api_key=key)
    try:
        pieces = list(
            generator.stream([{"role": "user", "content": LIGHTHOUSE}], max_new_tokens=40)
        )
        text = "".join(pieces)
        assert len(pieces) > 2, pieces  # streamed, not one block
        assert "lighthouse.pdf" in text and "[1]" in text

        wrong_key = OpenAIChatGenerator(base_url=upstream, model="rag-default", api_key="nope")
        with pytest.raises(ModelError, match="401"):
            list(wrong_key.stream([{"role": "user", "content": LIGHTHOUSE}], max_new_tokens=5))
        wrong_model = OpenAIChatGenerator(base_url=upstream, model="gpt-4o", api_key=key)
        with pytest.raises(ModelError, match="does not exist"):
            list(wrong_model.stream([{"role": "user", "content": LIGHTHOUSE}], max_new_tokens=5))
    finally:
        generator.close()
