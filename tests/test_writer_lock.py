"""One writer per collection, across processes: `rag reindex` and `rag collections drop`
refuse, naming the collection and the holder, while another process writes to it or (on the
embedded store) has it open."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ingest.jobs import JobExecutor
from ingest.runs import ingest_into, run_ingest
from rag.catalog import list_collections, open_collection
from rag.cli import EXIT_ERROR, app
from rag.config import Settings
from rag.errors import StoreLockedError
from rag.job_runner import JobRunner
from rag.jobs import JobQueue
from rag.store.factory import collections_for
from tests.documents import write_fixture_folder
from tests.fakes import HashEmbedder

PROJECT = Path(__file__).resolve().parents[1]

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from rag.catalog import open_collection
    from rag.config import Settings
    from rag.store.factory import collections_for
    from tests.fakes import HashEmbedder

    data, store, url, how = sys.argv[1:5]
    settings = Settings(data_dir=Path(data), store=store, qdrant_url=url or None)
    if how == "open":  # what a running `rag serve` does on the embedded store
        held = open_collection(settings, HashEmbedder(), collection="team")
        print("held", flush=True)
        sys.stdin.readline()
        held.close()
    else:  # what an ingestion, a rebuild or a drop holds while it writes
        with collections_for(settings).writer("team"):
            print("held", flush=True)
            sys.stdin.readline()
    """
)


def settings_for(kind: str, tmp_path: Path) -> Settings:
    extra = {"store": "qdrant", "qdrant_url": str(tmp_path / "q")} if kind == "qdrant" else {}
    return Settings(data_dir=tmp_path / "data", chunk_size=48, chunk_overlap=4, **extra)  # type: ignore[arg-type]


@pytest.fixture
def team(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Settings:
    settings = settings_for(request.param, tmp_path)
    run_ingest(
        settings,
        [write_fixture_folder(tmp_path / "docs")],
        collection="team",
        embedder=HashEmbedder(),
    )
    monkeypatch.setenv("RAG_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("RAG_STORE", settings.store)
    if settings.qdrant_url:
        monkeypatch.setenv("RAG_QDRANT_URL", settings.qdrant_url)
    return settings


def hold(settings: Settings, how: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLDER,
            str(settings.data_dir),
            settings.store,
            settings.qdrant_url or "",
            how,
        ],
        cwd=PROJECT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if line.strip() != "held":
        child.kill()
        pytest.fail(f"the holder did not start: {line!r}")
    return child


def release(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    child.stdin.close()
    assert child.wait(timeout=30) == 0


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), terminal_width=200)
    return result.exit_code, " ".join(result.stderr.split())


@pytest.mark.parametrize("team", ["edge", "qdrant"], indirect=True)
def test_reindex_and_drop_refuse_while_another_process_writes(team: Settings) -> None:
    child = hold(team, "writer")
    try:
        for args in (["reindex", "-c", "team"], ["collections", "drop", "team", "--yes"]):
            code, err = cli(*args)
            assert code == EXIT_ERROR, err
            assert "collection 'team' is being written by another process" in err
            assert f"pid {child.pid}" in err
        assert list_collections(team) == ["team"]
    finally:
        release(child)
    code, err = cli("collections", "drop", "team", "--yes")
    assert code == 0, err
    assert list_collections(team) == []


@pytest.mark.parametrize("team", ["edge"], indirect=True)
def test_reindex_refuses_while_another_process_has_the_embedded_collection_open(
    team: Settings,
) -> None:
    before = open_collection(team, HashEmbedder(), collection="team")
    ids = before.point_ids()
    before.close()
    child = hold(team, "open")
    try:
        for args in (["reindex", "-c", "team"], ["collections", "drop", "team", "--yes"]):
            code, err = cli(*args)
            assert code == EXIT_ERROR, err
            assert "collection 'team'" in err and f"pid {child.pid}" in err
    finally:
        release(child)
    after = open_collection(team, HashEmbedder(), collection="team")
    try:
        assert after.point_ids() == ids
    finally:
        after.close()


def test_an_ingestion_refuses_while_another_writer_holds_the_collection(
    tmp_path: Path,
) -> None:
    settings = settings_for("edge", tmp_path)
    embedder = HashEmbedder()
    docs = write_fixture_folder(tmp_path / "docs")
    store = open_collection(settings, embedder, create=True)
    held, done = threading.Event(), threading.Event()

    def other_writer() -> None:  # a writer on another thread (its own lock file descriptor)
        with collections_for(settings).writer(settings.collection):
            held.set()
            done.wait(30)

    thread = threading.Thread(target=other_writer)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(StoreLockedError, match=f"pid {os.getpid()}"):
            ingest_into(settings, store, embedder, [docs])
        assert store.count() == 0
    finally:
        done.set()
        thread.join()
    assert ingest_into(settings, store, embedder, [docs]).ok
    assert store.count() > 0
    store.close()


def test_the_api_does_not_drop_a_collection_a_job_is_writing_to(
    fake_api: TestClient, settings: Settings
) -> None:
    assert fake_api.post("/v1/collections", json={"name": "team"}).status_code == 201
    state = fake_api.app.state.rag  # type: ignore[attr-defined]
    store = state.store("team")  # the service's open copy, which its job runner writes through
    held, done = threading.Event(), threading.Event()

    def job_writing() -> None:
        with collections_for(settings).writer("team"):
            held.set()
            done.wait(30)

    thread = threading.Thread(target=job_writing)
    thread.start()
    try:
        assert held.wait(10)
        response = fake_api.delete("/v1/collections/team")
        assert response.status_code == 503
        assert "is being written by another process" in response.json()["error"]["message"]
        assert store.count() == 0  # the writer's copy was not closed under it
    finally:
        done.set()
        thread.join()
    assert fake_api.delete("/v1/collections/team").status_code == 200
    assert fake_api.delete("/v1/collections/team").status_code == 404


def test_the_api_drops_a_collection_opened_on_another_thread(fake_api: TestClient) -> None:
    state = fake_api.app.state.rag  # type: ignore[attr-defined]
    in_use = state.store()  # opened at start-up; a request still holds it while it is dropped
    response = fake_api.delete("/v1/collections/default")
    assert response.status_code == 200, response.text
    assert in_use.collection == "default"


@pytest.mark.parametrize("team", ["edge"], indirect=True)
def test_a_job_waits_for_another_processs_write_then_runs(team: Settings, tmp_path: Path) -> None:
    queue = JobQueue(team.data_dir / "jobs.sqlite")
    runner = JobRunner(queue, JobExecutor(team, HashEmbedder()))
    job = queue.enqueue("team", [str(tmp_path / "docs")])
    child = hold(team, "writer")
    thread = threading.Thread(target=runner.run_one)
    try:
        thread.start()
        thread.join(timeout=2.5)
        assert thread.is_alive()  # waiting, not failed
        assert queue.get(job.id).status == "running"  # type: ignore[union-attr]
    finally:
        release(child)
    thread.join(timeout=60)
    done = queue.get(job.id)
    assert done is not None and done.status == "done", done
    assert done.report is not None and len(done.report["unchanged"]) == 6
    queue.close()
