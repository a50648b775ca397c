"""/v1/chat/completions (rag.api.openai.chat): the SSE framing, the wire format over the fakes,
then the real service through the official `openai` SDK and plain HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from rag.api.openai.chat import sse_events
from rag.chat import ChatDelta, ChatResult
from rag.errors import ModelError
from rag.types import Answer, Citation
from tests.conftest import COFFEE_REPLY, LiveServer, check_openai_error

LIGHTHOUSE = "How far can the Lighthouse beam be seen?"
DESCALE = {"role": "user", "content": "how often do I descale the machine"}


def names(citations: list[Any]) -> set[str]:
    return {Path(c["source"]).name for c in citations}


def _chat(**body: Any) -> dict[str, Any]:
    return {"model": "rag-default", "messages": [{"role": "user", "content": "hi"}]} | body


# --- server-sent events -------------------------------------------------------------------


def _parse_sse(lines: list[str]) -> list[Any]:
    text = "".join(lines)
    assert text.endswith("data: [DONE]\n\n")
    events = [e for e in text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    return [json.loads(e[6:]) for e in events[:-1]]


def test_sse_events_follow_openai_with_citations_once_and_usage_last() -> None:
    citation = Citation(1, "/d/lighthouse.pdf", "Handbook", "id", 0.5, "q", (), 2)
    answer = Answer("Seen from 22 miles [1].", [citation], False, {"total_ms": 1.0})
    result = ChatResult("Seen from 22 miles [1].", answer, "stop", 10, 5, "query")
    events = iter([ChatDelta("Seen from"), ChatDelta(" 22 miles [1]."), result])
    chunks = _parse_sse(list(sse_events(events, model="rag-default", include_usage=True)))
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1]) == (
        "Seen from 22 miles [1]."
    )
    finish = chunks[-2]
    assert finish["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert [c["source"] for c in finish["citations"]] == ["/d/lighthouse.pdf"]
    assert sum("citations" in c for c in chunks) == 1
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
    }
    assert all(c["usage"] is None for c in chunks[:-1])

    without = _parse_sse(list(sse_events(iter([result]), model="rag-default", include_usage=False)))
    assert all("usage" not in c for c in without) and without[-1]["choices"]


def test_an_error_after_the_stream_started_is_an_error_event() -> None:
    def failing() -> Iterator[ChatDelta]:
        yield ChatDelta("Seen")
        raise ModelError("the model crashed")

    text = "".join(sse_events(failing(), model="rag-default", include_usage=False))
    last = json.loads(text.strip().split("\n\n")[-1][6:])
    assert last["error"]["message"] == "the model crashed" and "[DONE]" not in text


# --- the wire format, over the fakes ------------------------------------------------------


def test_a_completion_has_openais_fields_and_ours(fake_api: TestClient) -> None:
    response = fake_api.post(
        "/v1/chat/completions", json={"model": "rag-default", "messages": [DESCALE]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == [
        "id",
        "object",
        "created",
        "model",
        "system_fingerprint",
        "choices",
        "usage",
        "citations",
        "rag",
    ]
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "rag-default" and body["system_fingerprint"] is None
    choice = body["choices"][0]
    assert list(choice) == ["index", "message", "logprobs", "finish_reason"]
    assert choice["message"]["role"] == "assistant" and choice["message"]["refusal"] is None
    assert choice["message"]["content"].startswith(COFFEE_REPLY)
    assert "**Sources**" in choice["message"]["content"]
    assert (choice["index"], choice["logprobs"], choice["finish_reason"]) == (0, None, "stop")
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert [c["source"] for c in body["citations"]] == ["/d/coffee.md"]
    assert list(body["rag"]) == ["retrieval_query", "abstained", "extractive", "timings"]
    assert body["rag"]["retrieval_query"] == DESCALE["content"]


def test_a_streamed_completion_is_server_sent_events(fake_api: TestClient) -> None:
    body = {"model": "rag-default", "messages": [DESCALE], "stream": True}
    with fake_api.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        text = "".join(response.iter_text())
    chunks = _parse_sse([text])
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert content.startswith(COFFEE_REPLY)
    assert [c["source"] for c in chunks[-1]["citations"]] == ["/d/coffee.md"]
    assert all("usage" not in c for c in chunks)


def test_a_refused_stream_is_refused_before_it_starts(fake_api: TestClient) -> None:
    response = fake_api.post("/v1/chat/completions", json=_chat(stream=True, n=2))
    assert response.headers["content-type"] == "application/json"
    check_openai_error(response, 400, "n")


# --- the real service -----------------------------------------------------------------------


@pytest.mark.real_models
def test_chat_completion_cites_the_right_file(openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.create(
        model="rag-default",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": LIGHTHOUSE},
        ],
        temperature=0.7,
        seed=1,
        user="someone",
        max_tokens=100,
    )
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == "rag-default"
    choice = completion.choices[0]
    assert choice.finish_reason in ("stop", "length") and choice.message.role == "assistant"
    content = choice.message.content or ""
    assert "[1]" in content and "**Sources**" in content and "lighthouse.pdf" in content
    extra = completion.model_extra or {}
    assert "lighthouse.pdf" in names(extra["citations"])
    assert extra["rag"]["abstained"] is False
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


@pytest.mark.real_models
def test_streamed_chat_completion_has_citations_once_and_usage(
    openai_client: openai.OpenAI,
) -> None:
    stream = openai_client.chat.completions.create(
        model="rag-default",
        messages=[{"role": "user", "content": "How many apple trees grow in the orchard?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 2
    assert "orchard.docx" in content and "[1]" in content
    with_citations = [c for c in chunks if (c.model_extra or {}).get("citations")]
    assert len(with_citations) == 1
    assert with_citations[0].choices[0].finish_reason in ("stop", "length")
    assert "orchard.docx" in names((with_citations[0].model_extra or {})["citations"])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


@pytest.mark.real_models
def test_a_follow_up_is_answered_from_the_earlier_topic(openai_client: openai.OpenAI) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": LIGHTHOUSE},
        {"role": "assistant", "content": "From 22 nautical miles away [1].\n\n**Sources** ..."},
        {"role": "user", "content": "And when is its lamp lit?"},
    ]
    follow_up = openai_client.chat.completions.create(model="rag-default", messages=messages)
    extra = follow_up.model_extra or {}
    assert "Lighthouse" in extra["rag"]["retrieval_query"]
    assert not extra["rag"]["abstained"]
    assert names(extra["citations"]) == {"lighthouse.pdf"}


@pytest.mark.real_models
@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b"{not json", 422, None),
        ({"model": "rag-default"}, 422, "messages"),
        ({"model": "rag-default", "messages": []}, 422, "messages"),
        ({"model": "rag-default", "messages": "hi"}, 422, "messages"),
        (_chat(messages=[{"role": "wizard", "content": "x"}]), 422, None),
        (_chat(stream="often"), 422, "stream"),
        (_chat(max_tokens=0), 422, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}]}, 422, "model"),
        (_chat(model="gpt-4o"), 404, "model"),
        (_chat(model="rag-nothere"), 404, "model"),
        (_chat(n=2), 400, "n"),
        (_chat(logprobs=True), 400, "logprobs"),
        (_chat(top_logprobs=3), 400, "top_logprobs"),
        (
            _chat(response_format={"type": "json_schema", "json_schema": {}}),
            400,
            "response_format",
        ),
        (_chat(tool_choice="required", tools=[{}]), 400, "tool_choice"),
        (_chat(stop=["a", "b", "c", "d", "e"]), 400, "stop"),
        (
            _chat(
                messages=[{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
            ),
            400,
            "messages",
        ),
        (_chat(messages=[{"role": "user", "content": "   "}]), 400, "messages"),
        (_chat(messages=[{"role": "user", "content": "x" * 5000}]), 400, "messages"),
        (
            _chat(
                messages=[
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
                ]
            ),
            400,
            "messages.[0].content",
        ),
    ],
)
def test_bad_chat_requests_are_4xx_openai_errors(
    live_server: LiveServer, body: Any, status: int, param: str | None
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = live_server.http.post(
        "/v1/chat/completions",
        headers={"Content-Type": "application/json"},
        content=content,
        timeout=60,
    )
    check_openai_error(response, status, param)


@pytest.mark.real_models
def test_unsupported_but_harmless_parameters_are_ignored(live_server: LiveServer) -> None:
    body = _chat(
        messages=[{"role": "user", "content": [{"type": "text", "text": LIGHTHOUSE}]}],
        tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        tool_choice="auto",
        presence_penalty=0.5,
        frequency_penalty=0.5,
        top_p=0.9,
        parallel_tool_calls=False,
        metadata={"a": "b"},
        n=1,
        response_format={"type": "text"},
        stop="\n\n\n",
        max_completion_tokens=5,
    )
    response = live_server.http.post("/v1/chat/completions", json=body, timeout=120)
    assert response.status_code == 200, response.text
    assert "lighthouse.pdf" in names(response.json()["citations"])
