"""A real `rag serve` under client aborts, slow readers and bursts of generation requests.

One server of this module's own (a short generation queue, its log in a file) serves every
test; the last one stops it with SIGTERM. Each test detects a hang with a generous deadline,
never a speed.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import API_KEY, ServerProcess, ingest_over_http, wait_until_healthy

pytestmark = pytest.mark.real_models

QUESTION = "How far can the Lighthouse beam be seen?"
HANG = 60.0  # seconds: far beyond any answer of this server, so only a hang exceeds it
QUEUE = 3


@dataclass
class Server:
    process: ServerProcess
    log: Path
    http: httpx.Client

    @property
    def port(self) -> int:
        return int(self.process.url.rsplit(":", 1)[1])

    def logged(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    process = ServerProcess.start(
        {
            "RAG_GENERATION_CONCURRENCY": "1",
            "RAG_ANSWER_MODE": "generate",  # what is aborted is a generation
            "RAG_GENERATION_QUEUE": str(QUEUE),
            "RAG_GENERATION_QUEUE_TIMEOUT_SECONDS": "30",
            "RAG_SHUTDOWN_TIMEOUT_SECONDS": "3",
            "RAG_LOG_LEVEL": "INFO",
        },
        stderr=log,
    )
    try:
        wait_until_healthy(process.url, 180, process.proc)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        with httpx.Client(base_url=process.url, headers=headers, timeout=HANG) as http:
            job = ingest_over_http(http, process.root / "docs")
            assert job["status"] == "done", job
            yield Server(process, log, http)
    finally:
        process.stop()


def _chat_body(*, stream: bool, max_tokens: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "rag-default",
        "messages": [{"role": "user", "content": QUESTION}],
        "stream": stream,
    }
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


def _abort(port: int, path: str, body: dict[str, Any], after: float) -> bytes:
    """Send a request on a raw socket, read for ``after`` seconds, then close the connection:
    whatever the server was doing then (retrieving, waiting for the model, streaming)."""
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    received = b""
    deadline = time.monotonic() + after
    with socket.create_connection(("127.0.0.1", port), timeout=HANG) as sock:
        sock.sendall(head + payload)
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            received += data
    return received


def _answered_chat(server: Server) -> None:
    response = server.http.post(
        "/v1/chat/completions", json=_chat_body(stream=False, max_tokens=8), timeout=HANG
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]


def _stopped_generations(server: Server) -> int:
    return server.logged().count("client disconnected: generation stopped")


def _wait_for(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


def test_a_burst_beside_a_slow_stream_is_served_or_refused_and_the_service_answers(
    server: Server,
) -> None:
    """A reader that takes the stream a chunk at a time holds nothing the burst (chats and
    /v1/query) needs: the burst is answered or refused with 429/503 and Retry-After, and
    /healthz and /v1/search answer throughout."""
    stop_probing = threading.Event()
    probe_failures: list[str] = []

    def probe() -> None:
        with httpx.Client(
            base_url=server.process.url,
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=10,
        ) as http:
            while not stop_probing.is_set():
                try:
                    health = http.get("/healthz")
                    search = http.post("/v1/search", json={"query": "lighthouse beam", "k": 2})
                    if health.status_code != 200 or search.status_code != 200:
                        probe_failures.append(f"{health.status_code} {search.status_code}")
                except httpx.HTTPError as exc:
                    probe_failures.append(repr(exc))
                time.sleep(0.2)

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(
            base_url=server.process.url,
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=HANG,
            limits=limits,
        ) as client:
            chats = [
                client.post("/v1/chat/completions", json=_chat_body(stream=False, max_tokens=4))
                for _ in range(30)
            ]
            queries = [client.post("/v1/query", json={"question": QUESTION}) for _ in range(15)]
            return await asyncio.gather(*chats, *queries)

    slow = socket.create_connection(("127.0.0.1", server.port), timeout=HANG)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    payload = json.dumps(_chat_body(stream=True)).encode()
    slow.sendall(
        (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode()
        + payload
    )
    prober = threading.Thread(target=probe, daemon=True)
    try:
        slow.recv(64)  # the stream has started; it is then read 64 bytes a second
        prober.start()
        done: list[list[httpx.Response]] = []
        burster = threading.Thread(target=lambda: done.append(asyncio.run(burst())), daemon=True)
        burster.start()
        slow.settimeout(1)
        while burster.is_alive():
            try:
                if not slow.recv(64):
                    break
            except TimeoutError:
                continue
            time.sleep(1)
        burster.join(HANG)
        assert done, "the burst was neither answered nor refused"
    finally:
        stop_probing.set()
        slow.close()
    prober.join(HANG)
    assert not probe_failures, probe_failures
    statuses = [r.status_code for r in done[0]]
    assert set(statuses) <= {200, 429, 503}, statuses
    assert 200 in statuses
    for response in done[0]:
        if response.status_code != 200:
            assert int(response.headers["Retry-After"]) >= 1
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}, error


def test_a_disconnected_chat_or_query_stops_its_generation_and_frees_its_slot(
    server: Server,
) -> None:
    _answered_chat(server)  # the KV cache and the model are warm
    cases = [
        ("/v1/chat/completions", _chat_body(stream=False)),
        ("/v1/query", {"question": QUESTION}),
        ("/v1/chat/completions", _chat_body(stream=True)),
    ]
    for path, body in cases:
        before = _stopped_generations(server)
        _abort(server.port, path, body, after=0.8)
        assert _wait_for(lambda b=before: _stopped_generations(server) > b, 30), (
            f"the generation of an aborted {path} ran on"
        )
        _answered_chat(server)


def test_aborted_streams_leave_later_chats_answered_and_sigterm_stops_the_server(
    server: Server,
) -> None:
    """Aborts while retrieving, waiting for the model and streaming; repeated, because what
    they broke depended on a race."""
    for after in (0.3, 0.5, 0.8, 1.0):
        for _ in range(2):
            _abort(server.port, "/v1/chat/completions", _chat_body(stream=True), after)
            _answered_chat(server)
    # One more stream in flight while the server is asked to stop.
    streaming = threading.Thread(
        target=_abort,
        args=(server.port, "/v1/chat/completions", _chat_body(stream=True), 20.0),
        daemon=True,
    )
    streaming.start()
    time.sleep(1.0)
    server.process.proc.send_signal(signal.SIGTERM)
    try:
        server.process.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("rag serve did not stop within 30 s of SIGTERM")
