"""`rag worker` runs queued jobs against a Qdrant server (here qdrant-client's local mode)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from rag.config import Settings
from rag.embedding import build_embedder
from rag.jobs import JobQueue
from rag.runtime import open_collection
from rag.services import run_worker
from tests.conftest import MODEL_CACHE
from tests.documents import write_fixture_folder

pytestmark = pytest.mark.real_models


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
