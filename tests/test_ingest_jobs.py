"""Queued jobs are executed: by `rag worker` against a Qdrant server (here qdrant-client's
local mode), and by the executor for every job kind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.jobs import JobExecutor, ingest_options, run_worker
from rag.catalog import open_collection
from rag.config import Settings
from rag.embedding import build_embedder
from rag.job_runner import JobProgress, JobRunner
from rag.jobs import Job, JobQueue
from tests.conftest import MODEL_CACHE
from tests.documents import write_fixture_folder
from tests.fakes import HashEmbedder


@pytest.mark.real_models
def test_worker_runs_jobs_from_the_shared_queue(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        model_cache_dir=MODEL_CACHE,
        store="qdrant",
        qdrant_url=str(tmp_path / "qdrant"),
    )
    docs = write_fixture_folder(tmp_path / "docs")
    queue = JobQueue(settings.data_dir / "jobs.sqlite")  # what the API would enqueue into
    job = queue.enqueue("team", [str(docs)])
    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(settings,), kwargs={"stop": stop})
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while (current := queue.get(job.id)) is not None and current.status in (
            "queued",
            "running",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert current is not None and current.status == "done", current
    assert current.report is not None and len(current.report["added"]) == 6
    store = open_collection(settings, build_embedder(settings), collection="team")
    try:
        assert store.count() == current.progress.chunks_written > 0
    finally:
        store.close()
        queue.close()


def test_the_executor_runs_ingest_and_reindex_jobs(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", chunk_size=48, chunk_overlap=4)
    embedder = HashEmbedder()
    docs = write_fixture_folder(tmp_path / "docs")
    queue = JobQueue(settings.data_dir / "jobs.sqlite")
    switched: list[str] = []

    @contextlib.contextmanager
    def switching(name: str) -> Iterator[None]:
        switched.append(name)
        yield

    runner = JobRunner(queue, JobExecutor(settings, embedder, switching=switching))
    try:
        ingested = queue.enqueue("team", [str(docs)])
        assert runner.run_one()
        done = queue.get(ingested.id)
        assert done is not None and done.status == "done", done
        assert done.report is not None and done.report["ok"] and len(done.report["added"]) == 6

        rebuilt = queue.enqueue("team", [], kind="reindex")
        assert runner.run_one()
        done = queue.get(rebuilt.id)
        assert done is not None and done.status == "done", done
        assert done.report is not None and len(done.report["added"]) == 6
        assert switched == ["team"]
    finally:
        queue.close()
    store = open_collection(settings, embedder, collection="team")
    try:
        assert store.count() == done.progress.chunks_written > 0
    finally:
        store.close()


def test_an_api_job_carries_its_roots_to_the_process_that_runs_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    docs = write_fixture_folder(root / "docs")
    (tmp_path / "secret.txt").write_text("secret words " * 10)
    queue = JobQueue(tmp_path / "data" / "jobs.sqlite")
    # The API checked the folder; the link appears after the job was queued.
    job = queue.enqueue("team", [str(docs)], options=ingest_options(confine=[root]))
    (docs / "late.txt").symlink_to(tmp_path / "secret.txt")
    # A worker whose own settings name no roots still confines the job to those it carries.
    worker = Settings(data_dir=tmp_path / "data", chunk_size=48, chunk_overlap=4)
    try:
        assert JobRunner(queue, JobExecutor(worker, HashEmbedder())).run_one()
        done = queue.get(job.id)
    finally:
        queue.close()
    assert done is not None and done.status == "done" and done.report is not None
    assert done.options == {"confine": [str(root)], "allow_empty": False}
    assert len(done.report["added"]) == 6
    assert [Path(f["path"]).name for f in done.report["failed"]] == ["late.txt"]


@pytest.mark.real_models
def test_rag_worker_runs_ingest_and_reindex_jobs_and_stops_on_sigterm(tmp_path: Path) -> None:
    """A real `rag worker` beside a live runner (this process) runs every job kind but the
    live runner's, and stops cleanly on SIGTERM."""
    data = tmp_path / "data"
    docs = write_fixture_folder(tmp_path / "docs")
    queue = JobQueue(data / "jobs.sqlite")
    busy, release = threading.Event(), threading.Event()

    def live(job: Job, progress: JobProgress) -> dict[str, str]:
        busy.set()
        assert release.wait(240)
        return {"ran": "here"}

    held = queue.enqueue("other", [str(docs)])
    live_runner = JobRunner(queue, live, poll_seconds=0.05)
    live_runner.start()
    assert busy.wait(10)
    ingested = queue.enqueue("team", [str(docs)])
    rebuilt = queue.enqueue("team", [], kind="reindex")
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(data),
        "RAG_MODEL_CACHE_DIR": str(MODEL_CACHE),
        "RAG_INGEST_IN_PROCESS": "false",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "worker"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while (current := queue.get(rebuilt.id)) is not None and current.status in (
            "queued",
            "running",
        ):
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.2)
        first = queue.get(ingested.id)
        assert first is not None and first.status == "done", first
        assert current is not None and current.status == "done", current
        assert current.report is not None and len(current.report["added"]) == 6
        live_job = queue.get(held.id)
        assert live_job is not None and live_job.status == "running", live_job
        assert live_job.owner == live_runner.owner
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)
        assert code == 0, worker.stderr.read() if worker.stderr else ""
        assert current.owner is not None and f":{worker.pid}:" in current.owner
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        release.set()
        live_runner.stop()
    assert queue.get(held.id).report == {"ran": "here"}  # type: ignore[union-attr]
    queue.close()
