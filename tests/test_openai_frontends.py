"""Chat frontends on /v1/chat/completions: background tasks answered without retrieval,
Open WebUI's source events, and display names; over the fakes through create_app, with the
official `openai` SDK, then on the real service."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from rag.answering import SYSTEM_PROMPT
from rag.api.app import create_app
from rag.api.openai.sources import open_webui_sources, wants_source_events
from rag.catalog import open_collection
from rag.config import Settings
from rag.display import SourceNames
from rag.types import Citation
from tests.conftest import API_KEY, COFFEE, COFFEE_REPLY, LiveServer, _fill, check_openai_error
from tests.fakes import HashEmbedder, ScriptedGenerator
from tests.frontend_requests import (
    DESCALING,
    librechat_prompt,
    open_webui_attachment,
    open_webui_prompt,
    task_request,
)

OPEN_WEBUI_AGENT = {"User-Agent": "Python/3.11 aiohttp/3.12.15"}
DESCALE = {"role": "user", "content": "how often do I descale the machine"}
OPENAI_FIELDS = ["id", "object", "created", "model", "system_fingerprint", "choices", "usage"]

MakeApi = Callable[..., TestClient]


@pytest.fixture
def make_api(settings: Settings, embedder: HashEmbedder) -> Iterator[MakeApi]:
    """``make_api(scripted_generator, **settings)``: an app over the fakes (the two documents of
    ``filled_store``) in a data folder of its own, the key sent on every request."""
    clients: list[TestClient] = []

    def make(scripted: ScriptedGenerator, /, **overrides: Any) -> TestClient:
        update = {"api_keys": [SecretStr(API_KEY)], **overrides}
        update["data_dir"] = settings.data_dir / f"app-{len(clients)}"
        keyed = settings.model_copy(update=update)
        store = open_collection(keyed, embedder, create=True)
        try:
            _fill(store, embedder)
        finally:
            store.close()
        app = create_app(keyed, embedder=embedder, generator=scripted)
        client = TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"})
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def sse_chunks(response: httpx.Response) -> list[dict[str, Any]]:
    text = response.text
    assert text.endswith("data: [DONE]\n\n"), text[-200:]
    events = [e for e in text.split("\n\n") if e]
    return [json.loads(e.removeprefix("data: ")) for e in events[:-1]]


def streamed_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])


# --- background tasks ---------------------------------------------------------------------


def test_an_open_webui_title_is_written_without_retrieval(make_api: MakeApi) -> None:
    generator = ScriptedGenerator(["Aurora Descaling Schedule"])
    api = make_api(generator, task_titles="model")
    prompt = open_webui_prompt("title", DESCALING)
    response = api.post("/v1/chat/completions", json=task_request(prompt), headers=OPEN_WEBUI_AGENT)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == OPENAI_FIELDS  # no citations, no rag, no sources
    content = body["choices"][0]["message"]["content"]
    assert json.loads(content) == {"title": "Aurora Descaling Schedule"}
    assert body["choices"][0]["finish_reason"] == "stop" and body["usage"]["total_tokens"] > 0
    # One generation, of a title from the question: no passages, none of the answering rules.
    (messages,) = generator.prompts
    assert SYSTEM_PROMPT not in json.dumps(messages) and COFFEE not in json.dumps(messages)
    assert DESCALING[0]["content"] in messages[-1]["content"]


@pytest.mark.parametrize(("generator", "by_model"), [("local", False), ("openai", True)])
def test_titles_are_written_by_the_model_only_behind_a_model_server(
    make_api: MakeApi, generator: str, by_model: bool
) -> None:
    scripted = ScriptedGenerator(["Aurora Descaling Schedule"])
    api = make_api(scripted, generator=generator, openai_model="any")  # auto
    prompt = open_webui_prompt("title", DESCALING)
    content = api.post("/v1/chat/completions", json=task_request(prompt)).json()
    title = json.loads(content["choices"][0]["message"]["content"])["title"]
    assert title == ("Aurora Descaling Schedule" if by_model else "Aurora Descale Espresso Machine")
    assert len(scripted.prompts) == int(by_model)


def test_a_streamed_task_is_a_clean_stream(make_api: MakeApi) -> None:
    generator = ScriptedGenerator(["never used"])
    api = make_api(generator)
    prompt = open_webui_prompt("tags", DESCALING)
    body = task_request(prompt, stream=True, stream_options={"include_usage": True})
    response = api.post("/v1/chat/completions", json=body, headers=OPEN_WEBUI_AGENT)
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "text/event-stream"
    )
    chunks = sse_chunks(response)
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert not any({"citations", "rag", "event"} & c.keys() for c in chunks)
    assert json.loads(streamed_text(chunks)) == {"tags": ["Aurora"]}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    assert generator.prompts == []  # a rule: the model was not asked


@pytest.mark.parametrize("kind", ["follow_ups", "queries"])
def test_rule_tasks_take_no_generation(make_api: MakeApi, kind: str) -> None:
    generator = ScriptedGenerator(["never used"])
    api = make_api(generator)
    response = api.post(
        "/v1/chat/completions", json=task_request(open_webui_prompt(kind, DESCALING))
    )
    assert response.status_code == 200, response.text
    assert json.loads(response.json()["choices"][0]["message"]["content"])[kind]
    assert generator.prompts == []


def test_a_librechat_title_is_the_bare_title(make_api: MakeApi) -> None:
    api = make_api(ScriptedGenerator(["Aurora Descaling"]), task_titles="model")
    prompt = librechat_prompt("completion", DESCALING[0]["content"], "Every 200 cycles [1].")
    response = api.post(
        "/v1/chat/completions",
        json={"model": "rag-default", "messages": [{"role": "user", "content": prompt}]},
    )
    assert response.json()["choices"][0]["message"]["content"] == "Aurora Descaling"


def test_a_task_has_its_own_length_limit(make_api: MakeApi) -> None:
    api = make_api(ScriptedGenerator([COFFEE_REPLY]), max_question_chars=300)
    prompt = open_webui_prompt("follow_ups", DESCALING)
    assert len(prompt) > 300  # longer than a question may be, and answered
    response = api.post("/v1/chat/completions", json=task_request(prompt))
    assert response.status_code == 200, response.text

    small = make_api(
        ScriptedGenerator([COFFEE_REPLY]), max_question_chars=300, max_task_prompt_chars=500
    )
    response = small.post("/v1/chat/completions", json=task_request(prompt))
    check_openai_error(response, 400, "messages")
    assert "RAG_MAX_TASK_PROMPT_CHARS" in response.json()["error"]["message"]
    question = {"role": "user", "content": "descale " * 100}
    response = small.post(
        "/v1/chat/completions", json={"model": "rag-default", "messages": [question]}
    )
    check_openai_error(response, 400, "messages")
    assert "RAG_MAX_QUESTION_CHARS" in response.json()["error"]["message"]


def test_a_task_for_an_unknown_model_is_404(make_api: MakeApi) -> None:
    api = make_api(ScriptedGenerator(["x"]))
    body = task_request(open_webui_prompt("title", DESCALING), model="rag-nowhere")
    check_openai_error(api.post("/v1/chat/completions", json=body), 404, "model")


# --- Open WebUI's source events -------------------------------------------------------------


def test_each_citation_is_a_source_of_its_own_with_title_headings_page_and_quote() -> None:
    names = SourceNames(["/srv/docs"])
    same_file = [
        Citation(1, "/srv/docs/ops/manual.pdf", "Ops Manual", "c1", 0.9, "Check the lamp.", (), 3),
        Citation(
            2,
            "/srv/docs/ops/manual.pdf",
            "Ops Manual",
            "c2",
            0.7,
            "Oil it.",
            ("Ops Manual", "Care", "Oiling"),
        ),
    ]
    first, second = open_webui_sources(same_file, names)
    # Open WebUI numbers sources by id: one id each keeps its n-th source the answer's [n].
    assert first["source"]["id"] != second["source"]["id"]
    assert first["metadata"][0]["source"] == first["source"]["id"] == "ops/manual.pdf#1"
    assert first["source"]["name"] == "Ops Manual" and first["metadata"][0]["page"] == 2
    assert first["document"] == ["**Ops Manual** · `ops/manual.pdf` · p. 3\n\nCheck the lamp."]
    assert second["source"]["name"] == second["metadata"][0]["name"] == "Ops Manual › Oiling"
    assert second["document"][0].startswith("**Ops Manual** · `ops/manual.pdf` · Care › Oiling\n")
    assert "page" not in second["metadata"][0] and second["distances"] == [0.7]
    assert second["metadata"][0]["path"] == "/srv/docs/ops/manual.pdf"


@pytest.mark.parametrize(
    ("headers", "wanted"),
    [
        ({"user-agent": "Python/3.11 aiohttp/3.12.15"}, True),
        ({"X-OpenWebUI-User-Name": "Ada"}, True),
        ({"user-agent": "OpenAI/Python 1.99.0"}, False),
        ({"user-agent": "python-httpx/0.28.1"}, False),
        ({}, False),
    ],
)
def test_open_webui_is_recognised_by_its_requests(headers: dict[str, str], wanted: bool) -> None:
    lowered = {k.lower(): v for k, v in headers.items()}  # as Starlette's headers read
    assert wants_source_events(Settings(), lowered) is wanted
    assert wants_source_events(Settings(source_events="off"), lowered) is False
    assert wants_source_events(Settings(source_events="openwebui"), lowered) is True


def _stream(api: TestClient, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    body = {"model": "rag-default", "messages": [DESCALE], "stream": True}
    response = api.post("/v1/chat/completions", json=body, headers=headers or {})
    assert response.status_code == 200, response.text
    return sse_chunks(response)


def test_source_events_are_sent_to_open_webui_before_the_finish(make_api: MakeApi) -> None:
    api = make_api(ScriptedGenerator([COFFEE_REPLY]))
    chunks = _stream(api, OPEN_WEBUI_AGENT)
    events = [c for c in chunks if "event" in c]
    assert len(events) == 1
    assert streamed_text(chunks).strip() == COFFEE_REPLY  # no footer: the panel shows sources
    finish = next(
        i for i, c in enumerate(chunks) if c["choices"] and c["choices"][0]["finish_reason"]
    )
    assert chunks.index(events[0]) == finish - 1  # after the text, before the finish_reason
    chunk = events[0]
    assert chunk["object"] == "chat.completion.chunk" and chunk["choices"] == []
    assert chunk["event"]["type"] == "source"
    source = chunk["event"]["data"]
    assert set(source) == {"source", "document", "metadata", "distances"}
    assert "type" not in source  # Open WebUI saves only sources without a type
    assert source["source"] == {"id": "coffee.md#1", "name": "A"}
    (document,) = source["document"]
    assert document.endswith(COFFEE) and "`coffee.md`" in document
    (metadata,) = source["metadata"]
    assert metadata["source"] == "coffee.md#1" and metadata["name"] == "A"
    assert metadata["path"] == "/d/coffee.md" and metadata["file"] == "coffee.md"
    assert "page" not in metadata  # a text file has no page
    citations = chunks[finish]["citations"]
    assert source["distances"] == [citations[0]["score"]]
    assert citations[0]["display_source"] == "coffee.md"


@pytest.mark.parametrize(
    ("setting", "headers", "sent"),
    [
        ("auto", {}, False),  # a plain client: a clean stream
        ("auto", {"User-Agent": "OpenAI/Python 1.99.0"}, False),
        ("auto", {"X-OpenWebUI-User-Id": "u1"}, True),
        ("off", OPEN_WEBUI_AGENT, False),
        ("openwebui", {}, True),
    ],
)
def test_source_events_follow_the_setting_and_the_client(
    make_api: MakeApi, setting: str, headers: dict[str, str], sent: bool
) -> None:
    api = make_api(ScriptedGenerator([COFFEE_REPLY]), source_events=setting)
    chunks = _stream(api, headers)
    assert any("event" in c for c in chunks) is sent
    assert all(c["choices"] for c in chunks) is not sent
    assert streamed_text(chunks).startswith(COFFEE_REPLY)

    body = {"model": "rag-default", "messages": [DESCALE]}
    whole = api.post("/v1/chat/completions", json=body, headers=headers).json()
    assert ("sources" in whole) is sent
    assert whole["citations"][0]["display_source"] == "coffee.md"
    if sent:
        (source,) = whole["sources"]
        assert source["metadata"][0]["source"] == "coffee.md#1"


def test_the_openai_sdk_reads_answers_with_and_without_source_events(make_api: MakeApi) -> None:
    for setting in ("off", "openwebui"):
        api = make_api(ScriptedGenerator([COFFEE_REPLY]), source_events=setting)
        client = openai.OpenAI(
            base_url="http://testserver/v1", api_key=API_KEY, http_client=api, max_retries=0
        )
        completion = client.chat.completions.create(model="rag-default", messages=[DESCALE])
        assert (completion.choices[0].message.content or "").startswith(COFFEE_REPLY)
        extra = completion.model_extra or {}
        assert ("sources" in extra) is (setting == "openwebui")
        stream = client.chat.completions.create(
            model="rag-default", messages=[DESCALE], stream=True
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.startswith(COFFEE_REPLY)
        # Open WebUI shows the sources in its own panel: the footer is only for other clients.
        assert ("**Sources**" in text) is (setting == "off")
        with_events = [c for c in chunks if (c.model_extra or {}).get("event")]
        assert len(with_events) == (1 if setting == "openwebui" else 0)
        title = client.chat.completions.create(
            model="rag-default",
            messages=[{"role": "user", "content": open_webui_prompt("title", DESCALING)}],
        )
        assert json.loads(title.choices[0].message.content or "")["title"]
        assert title.model_extra == {}


# --- attached files -------------------------------------------------------------------------

PUMP = "The Zephyr-9 pump must be primed with 40 ml of water before first use."
PUMP_QUESTION = {"role": "user", "content": "How much water does the pump need before first use?"}
FILLER = " ".join(f"Section {i} of the manual covers cleaning the drip tray." for i in range(60))


def test_an_attached_file_is_answered_from_and_cited_by_its_name(make_api: MakeApi) -> None:
    generator = ScriptedGenerator(["Prime it with 40 ml of water [1]."])
    api = make_api(generator)
    messages = open_webui_attachment([PUMP_QUESTION], [("pump.txt", f"{FILLER}\n\n{PUMP}")])
    assert len(messages[-1]["content"]) > 2000  # longer than a question may be
    response = api.post(
        "/v1/chat/completions",
        json={"model": "rag-default", "messages": messages, "stream": True},
        headers=OPEN_WEBUI_AGENT,
    )
    assert response.status_code == 200, response.text
    chunks = sse_chunks(response)
    text = streamed_text(chunks)
    assert "40 ml" in text and "**Sources**" not in text  # Open WebUI shows its own panel
    citations = next(c for c in chunks if "citations" in c)["citations"]
    assert citations[0]["source"] == "pump.txt" and PUMP in citations[0]["quote"]
    sources = [c["event"]["data"] for c in chunks if "event" in c]
    assert sources[0]["source"]["name"] == "pump.txt"
    (prompt,) = generator.prompts
    shown = prompt[-1]["content"]
    assert PUMP in shown and "### Task" not in shown and "<source" not in shown
    assert "Question: How much water does the pump need before first use?" in shown


def test_the_collection_still_answers_beside_an_unrelated_attachment(make_api: MakeApi) -> None:
    api = make_api(ScriptedGenerator([COFFEE_REPLY]))
    messages = open_webui_attachment([DESCALE], [("pump.txt", PUMP)], system_context=True)
    response = api.post("/v1/chat/completions", json={"model": "rag-default", "messages": messages})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["citations"][0]["source"] == "/d/coffee.md"
    assert body["choices"][0]["message"]["content"].startswith(COFFEE_REPLY)


def test_too_much_attached_text_is_refused_with_its_setting(make_api: MakeApi) -> None:
    api = make_api(ScriptedGenerator([COFFEE_REPLY]), max_attached_chars=len(PUMP) - 1)
    messages = open_webui_attachment([PUMP_QUESTION], [("pump.txt", PUMP)])
    response = api.post("/v1/chat/completions", json={"model": "rag-default", "messages": messages})
    check_openai_error(response, 400, "messages")
    message = response.json()["error"]["message"]
    assert "RAG_MAX_ATTACHED_CHARS" in message and "pump.txt" in message


# --- the real service -----------------------------------------------------------------------


@pytest.mark.real_models
def test_the_real_service_answers_plain_clients_cleanly_and_titles_a_chat(
    openai_client: openai.OpenAI, live_server: LiveServer
) -> None:
    question = "How deep should tomato seeds be sown?"
    completion = openai_client.chat.completions.create(
        model="rag-default", messages=[{"role": "user", "content": question}]
    )
    content = completion.choices[0].message.content or ""
    extra = completion.model_extra or {}
    assert "sources" not in extra and "`tomatoes.rst`" in content
    assert live_server.url not in content and "/docs/" not in content  # no server path
    names = {c["display_source"] for c in extra["citations"]}
    assert "tomatoes.rst" in names
    assert all(c["source"].startswith("/") for c in extra["citations"])  # the full path stays

    chunks = list(
        openai_client.chat.completions.create(
            model="rag-default", messages=[{"role": "user", "content": question}], stream=True
        )
    )
    assert all(c.choices for c in chunks) and not any(
        (c.model_extra or {}).get("event") for c in chunks
    )

    history = [
        {"role": "user", "content": question},
        {"role": "assistant", "content": content},
    ]
    title = openai_client.chat.completions.create(
        model="rag-default",
        messages=[{"role": "user", "content": open_webui_prompt("title", history)}],
        max_tokens=1000,
    )
    words = json.loads(title.choices[0].message.content or "")["title"].split()
    assert 1 <= len(words) <= 8 and title.model_extra == {}  # no citations: nothing retrieved


@pytest.mark.real_models
def test_the_real_service_sends_source_events_to_open_webui(live_server: LiveServer) -> None:
    body = {
        "model": "rag-default",
        "messages": [{"role": "user", "content": "How deep should tomato seeds be sown?"}],
        "stream": True,
    }
    response = live_server.http.post(
        "/v1/chat/completions", json=body, headers={"X-OpenWebUI-Chat-Id": "c1"}
    )
    chunks = sse_chunks(response)
    sources = [c["event"]["data"] for c in chunks if "event" in c]
    assert sources and all(s["source"]["name"] for s in sources)
    assert len({s["metadata"][0]["source"] for s in sources}) == len(sources)
    files = {s["metadata"][0]["file"] for s in sources}
    assert "tomatoes.rst" in files and not any(f.startswith("/") for f in files)
    assert all(s["document"][0].strip() for s in sources)


@pytest.mark.real_models
def test_the_real_service_answers_from_a_file_attached_in_open_webui(
    live_server: LiveServer,
) -> None:
    messages = open_webui_attachment([PUMP_QUESTION], [("pump.txt", f"{FILLER}\n\n{PUMP}")])
    body = {"model": "rag-default", "messages": messages, "stream": False}
    response = live_server.http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert not answer["rag"]["abstained"]
    cited = [c for c in answer["citations"] if c["source"] == "pump.txt"]
    assert cited and "40 ml" in cited[0]["quote"]
    assert "`pump.txt`" in answer["choices"][0]["message"]["content"]
