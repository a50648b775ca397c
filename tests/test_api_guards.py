"""Checks before work (rag.api.middleware): body limits enforced while reading and keys checked
before a body is read, the Host allow-list, cross-origin writes and CORS, the open-collection
limit (rag.api.state), /healthz without paths and `rag serve`'s refusal to bind unprotected."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from rag.api.app import create_app
from rag.api.state import ServiceState
from rag.cli import EXIT_USAGE
from rag.cli import app as cli
from rag.config import Settings
from tests.api_jobs import wait_for_job
from tests.conftest import API_KEY, PROJECT, served_on_a_thread
from tests.fakes import HashEmbedder, ScriptedGenerator

CHUNK = 64 * 1024
KEY = {"Authorization": f"Bearer {API_KEY}"}


class CountedBody:
    """A request body of ``total`` bytes streamed in chunks, recording how much was taken."""

    def __init__(self, total: int, head: bytes = b"", tail: bytes = b"") -> None:
        self.total = total
        self.head = head
        self.tail = tail
        self.consumed = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.head:
            self.consumed += len(self.head)
            yield self.head
        while self.consumed < self.total:
            self.consumed += CHUNK
            yield b"x" * CHUNK
        yield self.tail


def multipart(total: int) -> tuple[CountedBody, dict[str, str]]:
    boundary = "rag-test-boundary"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="files"; filename="big.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return CountedBody(total, head, tail), {
        "Content-Type": f"multipart/form-data; boundary={boundary}"
    }


def send(app: FastAPI, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request through the app in process, its body streamed as the app reads it."""

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            return await http.request(method, path, **kwargs)

    return asyncio.run(run())


def guarded_app(settings: Settings, **changes: Any) -> FastAPI:
    return create_app(
        settings.model_copy(update=changes),
        embedder=HashEmbedder(),
        generator=ScriptedGenerator(),
    )


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


# --- body limits and keys, before the body is read ---------------------------------------------


@pytest.mark.parametrize("path", ["/v1/query", "/v1/chat/completions", "/v1/documents"])
def test_without_the_key_no_body_is_read(settings: Settings, path: str) -> None:
    app = guarded_app(settings, api_keys=[SecretStr(API_KEY)])
    body, headers = (
        multipart(32_000_000) if path == "/v1/documents" else (CountedBody(32_000_000), {})
    )
    response = send(app, "POST", path, content=body, headers=headers)
    assert_error(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert body.consumed < CHUNK  # the old code read all 32 MB before refusing


def test_an_oversize_json_body_is_cut_off_while_streaming(settings: Settings) -> None:
    app = guarded_app(settings, api_keys=[SecretStr(API_KEY)], max_request_bytes=100_000)
    body = CountedBody(32_000_000)
    response = send(app, "POST", "/v1/query", content=body, headers=KEY)
    error = assert_error(response, 413)
    assert "RAG_MAX_REQUEST_BYTES" in error["message"]
    assert body.consumed <= 100_000 + 2 * CHUNK


def test_an_oversize_body_is_refused_by_its_length_unread(settings: Settings) -> None:
    app = guarded_app(settings, api_keys=[SecretStr(API_KEY)], max_request_bytes=100_000)
    body = CountedBody(32_000_000)
    headers = KEY | {"Content-Length": str(32_000_000)}
    response = send(app, "POST", "/v1/embeddings", content=body, headers=headers)
    assert_error(response, 413)
    assert body.consumed == 0


def test_an_oversize_upload_is_cut_off_while_streaming(settings: Settings) -> None:
    app = guarded_app(settings, api_keys=[SecretStr(API_KEY)], max_upload_bytes=200_000)
    body, headers = multipart(32_000_000)
    response = send(app, "POST", "/v1/documents", content=body, headers=KEY | headers)
    error = assert_error(response, 413)
    assert "RAG_MAX_UPLOAD_BYTES" in error["message"]
    assert body.consumed <= 200_000 + 65_536 + 2 * CHUNK
    assert not list((settings.data_dir / "uploads").rglob("*.txt"))


def test_bodies_within_the_limits_pass(settings: Settings) -> None:
    app = guarded_app(settings, api_keys=[SecretStr(API_KEY)], max_request_bytes=100_000)
    with TestClient(app, base_url="http://localhost", headers=KEY) as client:
        search = client.post("/v1/search", json={"query": "q" * 1000})
        assert search.status_code == 200, search.text
        big = client.post("/v1/search", json={"query": "q" * 200_000})
        assert_error(big, 413)


@pytest.fixture
def uvicorn_url(settings: Settings) -> Iterator[str]:
    """The guarded app (key API_KEY, 100 kB body limit) served by uvicorn on loopback."""
    app = guarded_app(settings, api_keys=[SecretStr(API_KEY)], max_request_bytes=100_000)
    with served_on_a_thread(app) as url:
        yield url


@pytest.mark.parametrize("headers", [{}, KEY], ids=["no key", "key"])
def test_a_real_server_stops_reading_a_refused_body(
    uvicorn_url: str, headers: dict[str, str]
) -> None:
    """Over a socket: the refusal closes the connection instead of draining the body (what
    is sent before that fills the socket buffers, far less than the body)."""
    total = 64 * 1024 * 1024
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        while sent < total:
            sent += CHUNK
            yield b"x" * CHUNK

    try:
        response = httpx.post(
            f"{uvicorn_url}/v1/query", content=body(), headers=headers, timeout=30
        )
        assert_error(response, 413 if headers else 401)
    except httpx.TransportError:
        pass  # the server closed while the client was still writing: also a refusal
    assert sent < total // 2


# --- hosts ---------------------------------------------------------------------------------------


@pytest.fixture
def default_hosts(settings: Settings) -> Iterator[TestClient]:
    """The app with the default Host allow-list and no keys."""
    app = guarded_app(settings, allowed_hosts=[])
    with TestClient(app, base_url="http://localhost:8000") as client:
        yield client


@pytest.mark.parametrize(
    "host", ["localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST", "localhost."]
)
def test_loopback_hosts_are_served(default_hosts: TestClient, host: str) -> None:
    assert default_hosts.get("/healthz", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8000", "10.0.0.5"])
def test_other_hosts_are_refused(default_hosts: TestClient, host: str) -> None:
    """A page on attacker.example whose name was rebound to 127.0.0.1 reaches nothing."""
    for method, path in [("GET", "/healthz"), ("POST", "/v1/search")]:
        response = default_hosts.request(method, path, headers={"Host": host}, json={"query": "q"})
        error = assert_error(response, 400)
        assert "RAG_ALLOWED_HOSTS" in error["message"]


def test_configured_hosts_are_served(settings: Settings) -> None:
    app = guarded_app(settings, allowed_hosts=["rag.example"], host="192.168.1.20")
    with TestClient(app, base_url="http://localhost") as client:
        for host in ["rag.example", "rag.example:8443", "192.168.1.20:8000", "localhost"]:
            assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
        assert client.get("/healthz", headers={"Host": "other.example"}).status_code == 400
    anything = guarded_app(settings, allowed_hosts=["*"])
    with TestClient(anything, base_url="http://localhost") as client:
        assert client.get("/healthz", headers={"Host": "other.example"}).status_code == 200


# --- browsers: cross-origin writes and CORS ------------------------------------------------------

FORM_UPLOAD = {"files": [("files", ("note.md", b"# Note\n\nplanted text", "text/markdown"))]}


def uploads(settings: Settings) -> list[Path]:
    return list((settings.data_dir / "uploads").rglob("*.md"))


def test_a_cross_site_form_upload_is_refused(default_hosts: TestClient, settings: Settings) -> None:
    """What a web page's <form method=post enctype=multipart/form-data> sends, with no keys."""
    for headers in [
        {"Origin": "http://attacker.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ]:
        response = default_hosts.post("/v1/documents", headers=headers, **FORM_UPLOAD)
        error = assert_error(response, 403)
        assert error["type"] == "permission_error" and "RAG_CORS_ORIGINS" in error["message"]
    assert uploads(settings) == []
    deleted = default_hosts.request(
        "DELETE", "/v1/collections/default", headers={"Origin": "http://attacker.example"}
    )
    assert deleted.status_code == 403
    # Reading is no change: a cross-origin GET is answered (the browser keeps it from the page).
    assert default_hosts.get("/healthz", headers={"Origin": "http://x.example"}).status_code == 200


def test_same_origin_and_non_browser_writes_pass(
    default_hosts: TestClient, settings: Settings
) -> None:
    same = default_hosts.post(
        "/v1/documents",
        headers={"Origin": "http://localhost:8000", "Sec-Fetch-Site": "same-origin"},
        **FORM_UPLOAD,
    )
    assert same.status_code == 202, same.text
    assert default_hosts.post("/v1/documents", **FORM_UPLOAD).status_code == 202  # curl, SDKs


def test_an_allowed_origin_writes_and_gets_cors_headers(settings: Settings) -> None:
    origin = "https://chat.example"
    app = guarded_app(settings, cors_origins=[origin], api_keys=[SecretStr(API_KEY)])
    with TestClient(app, base_url="http://localhost") as client:
        preflight = client.options(
            "/v1/documents",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == origin
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        upload = client.post(
            "/v1/documents",
            headers=KEY | {"Origin": origin, "Sec-Fetch-Site": "cross-site"},
            **FORM_UPLOAD,
        )
        assert upload.status_code == 202, upload.text
        assert upload.headers["access-control-allow-origin"] == origin
        other = client.post(
            "/v1/documents", headers=KEY | {"Origin": "https://attacker.example"}, **FORM_UPLOAD
        )
        assert other.status_code == 403
        refused = client.options(
            "/v1/documents",
            headers={"Origin": "https://attacker.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in refused.headers


# --- /healthz ------------------------------------------------------------------------------------


class FolderEmbedder(HashEmbedder):
    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    @property
    def model_name(self) -> str:
        return str(self.folder)


class FileGenerator(ScriptedGenerator):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    @property
    def model_name(self) -> str:
        return str(self.path)


def test_healthz_shows_no_paths(settings: Settings, tmp_path: Path) -> None:
    models = tmp_path / "private-models"
    app = create_app(
        settings,
        embedder=FolderEmbedder(models / "minilm"),
        generator=FileGenerator(models / "smollm2.gguf"),
    )
    with TestClient(app) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    health = response.json()
    assert set(health) == {"status", "collection", "chunks", "embedding_model", "generator"}
    assert health["embedding_model"] == "minilm" and health["generator"] == "smollm2.gguf"
    assert "private-models" not in response.text and "/" not in response.text
    assert str(settings.data_dir) not in response.text


# --- open collections ----------------------------------------------------------------------------


def test_cold_collections_are_closed_and_reopened(settings: Settings) -> None:
    app = guarded_app(settings, max_open_collections=2)
    with TestClient(app) as client:
        state: ServiceState = app.state.rag
        upload = client.post(
            "/v1/documents",
            data={"collection": "alpha"},
            files=[("files", ("lamp.md", b"# Lamp\n\nthe lamp oil is kerosene", "text/markdown"))],
        )
        assert wait_for_job(client, upload.json())["status"] == "done"
        for name in ["beta", "gamma"]:
            assert client.post("/v1/collections", json={"name": name}).status_code == 201
        assert state.open_collections() == ["beta", "gamma"]  # alpha and default closed
        hits = client.post("/v1/search", json={"query": "lamp oil", "collection": "alpha"})
        assert hits.status_code == 200
        assert [Path(h["source"]).name for h in hits.json()["hits"]] == ["lamp.md"]
        assert state.open_collections() == ["gamma", "alpha"]
        assert client.get("/healthz").json()["collection"] == "default"
        assert len(state.open_collections()) == 2


def test_a_collection_in_use_is_not_closed(settings: Settings) -> None:
    from rag.api.state import collections_in_use

    limited = settings.model_copy(update={"max_open_collections": 1})
    state = ServiceState(limited, HashEmbedder(), ScriptedGenerator())
    try:
        for name in ["one", "two"]:
            state.store(name, create=True)
        assert state.open_collections() == ["two"]
        with collections_in_use():
            one = state.store("one")
            state.store("two")
            state.store("three", create=True)
            assert "one" in state.open_collections()  # a request is still using it
            assert one.count() == 0
        assert len(state.open_collections()) == 1
    finally:
        state.close()


# --- rag serve -----------------------------------------------------------------------------------


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """`rag serve` runs up to the point of serving; uvicorn's arguments are recorded."""
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no .env
    return calls


def serve(*args: str) -> Any:
    return CliRunner().invoke(cli, ["serve", *args], terminal_width=200)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "rag.example"])
def test_serve_refuses_to_bind_beyond_loopback_without_keys(
    served: list[dict[str, Any]], host: str
) -> None:
    result = serve("--host", host)
    assert result.exit_code == EXIT_USAGE
    assert "without API keys" in result.output and "--insecure-no-auth" in result.output
    assert served == []


def test_serve_binds_with_keys_the_flag_or_on_loopback(
    served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert serve("--host", "127.0.0.1").exit_code == 0
    assert serve("--host", "::1").exit_code == 0
    assert serve("--host", "0.0.0.0", "--insecure-no-auth").exit_code == 0
    monkeypatch.setenv("RAG_ALLOW_NO_AUTH", "true")
    assert serve("--host", "0.0.0.0").exit_code == 0
    monkeypatch.delenv("RAG_ALLOW_NO_AUTH")
    monkeypatch.setenv("RAG_API_KEYS", API_KEY)
    assert serve("--host", "0.0.0.0").exit_code == 0
    assert [c["host"] for c in served] == ["127.0.0.1", "::1", "0.0.0.0", "0.0.0.0", "0.0.0.0"]


def test_the_container_setups_still_serve(
    served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image and the Compose file run `rag serve --host 0.0.0.0` in a container whose
    port is published on loopback: they allow serving without keys, explicitly."""
    command = '["rag", "serve", "--host", "0.0.0.0", "--port", "8000"]'
    compose = (PROJECT / "docker-compose.yml").read_text()
    dockerfile = (PROJECT / "Dockerfile").read_text()
    assert f"command: {command}" in compose and f"CMD {command}" in dockerfile
    assert "RAG_ALLOW_NO_AUTH: ${RAG_ALLOW_NO_AUTH:-true}" in compose
    assert "RAG_ALLOW_NO_AUTH=true" in dockerfile
    monkeypatch.setenv("RAG_ALLOW_NO_AUTH", "true")
    assert serve("--host", "0.0.0.0", "--port", "8000").exit_code == 0
    assert served[0]["host"] == "0.0.0.0"


@pytest.mark.parametrize(
    "changes",
    [
        {"cors_origins": "chat.example.com"},
        {"cors_origins": "https://chat.example.com/app"},
        {"allowed_hosts": "http://rag.example/"},
    ],
)
def test_origins_and_hosts_are_checked_at_start(tmp_path: Path, changes: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="is not a"):
        Settings(data_dir=tmp_path, **changes)  # type: ignore[arg-type]
