"""Hostile input through the app over the fakes: lone surrogates, NUL and other control
characters, overlong names and fields, too many or too large chat messages and stop sequences.
Each gets a 4xx in the one error shape that names the field, and nothing stored is lost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from rag.api.app import create_app
from rag.api.schemas import refuse_unsafe_characters
from rag.cli import EXIT_USAGE, app
from rag.config import Settings, validate_collection_name
from tests.conftest import API_KEY, COFFEE, TEST_HOST
from tests.fakes import HashEmbedder, ScriptedGenerator

CHAT: dict[str, Any] = {"model": "rag-default", "messages": [{"role": "user", "content": "hi"}]}
SURROGATE = b'"\\ud800"'  # a lone surrogate, as a JSON escape: valid JSON, not valid UTF-8


def raw(client: TestClient, path: str, body: bytes) -> Any:
    return client.post(path, content=body, headers={"Content-Type": "application/json"})


def check_refused(response: Any, status: int, param: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert list(error) == ["message", "type", "param", "code"]
    assert error["type"] == "invalid_request_error" and error["param"] == param, error
    assert error["message"].startswith(param) or param in error["message"], error


def nothing_lost(client: TestClient) -> None:
    """The default collection still holds its two documents, and answers from them."""
    listed = client.get("/v1/collections").json()["collections"]
    assert {"name": "default", "chunks": 2} in listed
    hits = client.post("/v1/search", json={"query": COFFEE}).json()["hits"]
    assert hits[0]["text"] == COFFEE


@pytest.mark.parametrize(
    ("path", "body", "status", "param"),
    [
        ("/v1/search", b'{"query": %s}' % SURROGATE, 422, "query"),
        ("/v1/query", b'{"question": %s}' % SURROGATE, 422, "question"),
        (
            "/v1/chat/completions",
            b'{"model": "rag-default", "messages": [{"role": "user", "content": %s}]}' % SURROGATE,
            422,
            "messages.0.content",
        ),
        (
            "/v1/chat/completions",
            b'{"model": "rag-default", "messages": [{"role": "user", '
            b'"content": [{"type": "text", "text": %s}]}]}' % SURROGATE,
            422,
            "messages.0.content.0.text",
        ),
        (
            "/v1/chat/completions",
            b'{"model": %s, "messages": [{"role": "user", "content": "hi"}]}' % SURROGATE,
            422,
            "model",
        ),
        ("/v1/embeddings", b'{"model": "rag-default", "input": %s}' % SURROGATE, 422, "input"),
        (
            "/v1/embeddings",
            b'{"model": "rag-default", "input": ["ok", %s]}' % SURROGATE,
            422,
            "input.1",
        ),
        ("/v1/ingest", b'{"path": "/tmp/x\\u0000y"}', 422, "path"),
        ("/v1/search", b'{"query": "a\\u0000b"}', 422, "query"),
        ("/v1/search", b'{"query": "bell \\u0007"}', 422, "query"),
        ("/v1/search", b'{"query": "x", "source_prefix": "/d\\u0000"}', 422, "source_prefix"),
        ("/v1/query", b'{"question": "escape \\u001b[31m"}', 422, "question"),
        ("/v1/collections", b'{"name": "docs\\n"}', 400, "name"),
        ("/v1/collections", b'{"name": "docs\\u0000"}', 422, "name"),
        ("/v1/search", b'{"query": "x", "collection": "docs\\n"}', 400, "collection"),
    ],
)
def test_bad_characters_are_refused_by_name(
    fake_api: TestClient, path: str, body: bytes, status: int, param: str
) -> None:
    check_refused(raw(fake_api, path, body), status, param)
    nothing_lost(fake_api)


def test_an_unusable_ingest_path_is_refused(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", allowed_hosts=[TEST_HOST], ingest_roots=[tmp_path]
    )
    app = create_app(settings, embedder=HashEmbedder(), generator=ScriptedGenerator())
    with TestClient(app) as client:
        for path, status in [("~nosuchuser0/docs", 400), (f"{tmp_path}/a\x00b", 422)]:
            check_refused(client.post("/v1/ingest", json={"path": path}), status, "path")


def test_a_surrogate_in_a_field_name_is_refused(fake_api: TestClient) -> None:
    response = raw(fake_api, "/v1/search", b'{"query": "x", %s: 1}' % SURROGATE)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["message"].startswith("invalid body: ") and error["param"] is None
    nothing_lost(fake_api)


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/ingest", {"path": "/" + "a" * 5000}, "path"),
        ("/v1/search", {"query": "x", "collection": "c" * 300}, "collection"),
        ("/v1/search", {"query": "x", "source_prefix": "/" + "p" * 5000}, "source_prefix"),
        ("/v1/chat/completions", CHAT | {"model": "rag-" + "m" * 300}, "model"),
        ("/v1/chat/completions", CHAT | {"user": "u" * 300}, "user"),
        ("/v1/embeddings", {"model": "m" * 300, "input": "x"}, "model"),
        ("/v1/collections", {"name": "n" * 300}, "name"),
    ],
)
def test_overlong_names_and_paths_are_refused(
    fake_api: TestClient, path: str, body: dict[str, Any], param: str
) -> None:
    check_refused(fake_api.post(path, json=body), 422, param)
    nothing_lost(fake_api)


def test_tabs_and_newlines_are_text(fake_api: TestClient) -> None:
    response = fake_api.post("/v1/search", json={"query": "descale\tthe machine\r\nevery cycle"})
    assert response.status_code == 200
    assert refuse_unsafe_characters("a\tb\nc\rd é 报告") == "a\tb\nc\rd é 报告"


@pytest.fixture
def limited_api(tmp_path: Path) -> Any:
    settings = Settings(
        data_dir=tmp_path / "data",
        allowed_hosts=[TEST_HOST],
        api_keys=[SecretStr(API_KEY)],
        chat_max_messages=3,
        chat_max_chars=100,
        chat_max_stop=2,
        chat_max_stop_chars=10,
    )
    app = create_app(settings, embedder=HashEmbedder(), generator=ScriptedGenerator(["ok"]))
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        yield client


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


@pytest.mark.parametrize(
    ("change", "status", "param", "setting"),
    [
        ({"messages": [user("a"), user("b"), user("c"), user("d")]}, 400, "messages",
         "RAG_CHAT_MAX_MESSAGES"),
        ({"messages": [user("a" * 60), user("b" * 60)]}, 413, "messages", "RAG_CHAT_MAX_CHARS"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "a" * 101}]}]}, 413,
         "messages", "RAG_CHAT_MAX_CHARS"),
        ({"stop": ["a", "b", "c"]}, 400, "stop", "RAG_CHAT_MAX_STOP"),
        ({"stop": "s" * 11}, 400, "stop", "RAG_CHAT_MAX_STOP_CHARS"),
        ({"stop": ["s" * 6, "t" * 6]}, 400, "stop", "RAG_CHAT_MAX_STOP_CHARS"),
    ],
)  # fmt: skip
def test_chat_messages_and_stop_sequences_are_limited(
    limited_api: TestClient, change: dict[str, Any], status: int, param: str, setting: str
) -> None:
    response = limited_api.post("/v1/chat/completions", json=CHAT | change)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param and setting in error["message"], error


def test_chat_within_the_limits_is_answered(limited_api: TestClient) -> None:
    body = CHAT | {"messages": [user("a"), user("b"), user("c" * 90)], "stop": ["s" * 5] * 2}
    assert limited_api.post("/v1/chat/completions", json=body).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "kind"),
    [
        ("GET", "/nothere", 404, "not_found_error"),
        ("GET", "/v1/chat/completions", 405, "invalid_request_error"),
        ("DELETE", "/v1/search", 405, "invalid_request_error"),
        ("PUT", "/v1/models", 405, "invalid_request_error"),
        ("POST", "/v1/embeddings/extra", 404, "not_found_error"),
    ],
)
def test_unknown_routes_and_methods_have_the_one_error_shape(
    fake_api: TestClient, method: str, path: str, status: int, kind: str
) -> None:
    response = fake_api.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": {"message": response.json()["error"]["message"], "type": kind, "param": None,
                  "code": None}
    }  # fmt: skip
    if status == 405:
        assert response.headers["allow"]


def test_an_unexpected_failure_is_a_500_in_the_one_shape(tmp_path: Path) -> None:
    class BrokenEmbedder(HashEmbedder):
        def embed_query(self, text: str) -> Any:
            raise KeyError("a bug")

    settings = Settings(data_dir=tmp_path / "data", allowed_hosts=[TEST_HOST])
    app = create_app(settings, embedder=BrokenEmbedder(), generator=ScriptedGenerator())
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v1/search", json={"query": "x"})
    assert response.status_code == 500
    assert json.loads(response.content) == {
        "error": {"message": "internal server error", "type": "server_error", "param": None,
                  "code": None}
    }  # fmt: skip


@pytest.mark.parametrize("name", ["docs\n", "docs\r\n", "\ndocs", "docs\x00", "docs/x", ""])
def test_collection_names_are_matched_whole(name: str) -> None:
    with pytest.raises(ValueError, match="collection names"):
        validate_collection_name(name)
    with pytest.raises(ValueError, match="collection names"):
        Settings(collection=name)


def test_the_cli_refuses_a_collection_name_with_a_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nalpha\n")
    result = CliRunner().invoke(app, ["ingest", str(folder), "--dry-run", "-c", "docs\n"])
    assert result.exit_code == EXIT_USAGE and "collection names" in result.stderr
    assert not (tmp_path / "data" / "collections" / "docs\n").exists()
