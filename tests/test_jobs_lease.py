"""Job leases: a second runner leaves a live runner's job alone, a dead runner's job is taken
back, and a job that kills its process ends failed after a bounded number of attempts."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rag.job_runner import JobProgress, JobRunner
from rag.jobs import Job, JobQueue

PROJECT = Path(__file__).resolve().parents[1]


def wait_for(predicate: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def run_beside_a_live_runner(path: Path, *, lease_seconds: float, watch_for: float) -> None:
    """A runner works on a job; a second runner on its own connection to the queue, as in
    another process, starts meanwhile, and must neither take that job back nor start another
    one on the same collection."""
    first_queue = JobQueue(path, lease_seconds=lease_seconds)
    started, release = threading.Event(), threading.Event()

    def slow(job: Job, progress: JobProgress) -> Mapping[str, Any]:
        started.set()
        assert release.wait(30)
        return {"ran": job.id}

    job = first_queue.enqueue("team", ["/docs/a"])
    first = JobRunner(first_queue, slow, poll_seconds=0.05)
    first.start()
    assert started.wait(10)

    second_queue = JobQueue(path, lease_seconds=lease_seconds)
    ran_by_second: list[str] = []

    def record(job: Job, progress: JobProgress) -> Mapping[str, Any]:
        ran_by_second.append(job.id)
        return {"ran": job.id}

    later = second_queue.enqueue("team", ["/docs/b"])
    second = JobRunner(second_queue, record, poll_seconds=0.05)
    second.start()
    try:
        time.sleep(watch_for)
        current = second_queue.get(job.id)
        assert current is not None and current.status == "running"
        assert ran_by_second == []
        assert (current.owner, current.attempts) == (first.owner, 1)
        assert second_queue.get(later.id).status == "queued"  # type: ignore[union-attr]
        release.set()
        wait_for(lambda: second_queue.get(later.id).status == "done")  # type: ignore[union-attr]
    finally:
        release.set()
        first.stop()
        second.stop()
    done = first_queue.get(job.id)
    assert done is not None and done.status == "done" and done.report == {"ran": job.id}
    assert job.id not in ran_by_second
    first_queue.close()
    second_queue.close()


def test_a_second_runner_leaves_a_live_runners_job_alone(tmp_path: Path) -> None:
    run_beside_a_live_runner(tmp_path / "jobs.sqlite", lease_seconds=30, watch_for=0.5)


def test_the_heartbeat_keeps_a_running_job_past_its_lease(tmp_path: Path) -> None:
    # Several lease periods pass: the first runner's heartbeat keeps its job its own.
    run_beside_a_live_runner(tmp_path / "jobs.sqlite", lease_seconds=0.6, watch_for=2.0)


def test_a_dead_runners_job_is_taken_back_once_its_lease_expires(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path / "jobs.sqlite", lease_seconds=0.3)
    job = queue.enqueue("team", [])
    claimed = queue.claim("host:1:gone")  # its runner then dies: no heartbeat, no finish
    assert claimed is not None and claimed.id == job.id
    assert queue.claim("host:2:other") is None  # still leased
    time.sleep(0.4)
    again = queue.claim("host:2:other")
    assert again is not None and again.id == job.id
    assert (again.owner, again.attempts) == ("host:2:other", 2)
    # The runner that lost it can no longer finish it.
    queue.finish(job.id, {"stale": True}, owner="host:1:gone")
    assert queue.get(job.id).status == "running"  # type: ignore[union-attr]
    queue.finish(job.id, {}, owner="host:2:other")
    assert queue.get(job.id).status == "done"  # type: ignore[union-attr]
    queue.close()


POISON_RUNNER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from rag.jobs import JobQueue
    from rag.job_runner import JobRunner

    queue = JobQueue(Path(sys.argv[1]), lease_seconds=0.3, max_attempts=3)

    def run(job, progress):
        os._exit(17)  # what a decompression bomb or a segfault does to the process

    runner = JobRunner(queue, run)
    while runner.run_one():
        pass
    """
)


def test_a_job_that_kills_its_process_ends_failed_after_max_attempts(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    queue = JobQueue(path, lease_seconds=0.3, max_attempts=3)
    job = queue.enqueue("team", ["/docs/bomb.docx"])
    codes = []
    for _ in range(5):
        child = subprocess.run(
            [sys.executable, "-c", POISON_RUNNER, str(path)],
            cwd=PROJECT,
            capture_output=True,
            timeout=60,
        )
        codes.append(child.returncode)
        if child.returncode == 0:
            break
        time.sleep(0.4)  # the dead runner's lease expires
    assert codes == [17, 17, 17, 0]
    failed = queue.get(job.id)
    assert failed is not None and failed.status == "failed" and failed.attempts == 3
    assert failed.error is not None and "3 times" in failed.error
    queue.close()


def old_jobs_table(path: Path, *, status: str, started: float | None) -> None:
    """A jobs table as the first version made it, holding one job, 'old'."""
    db = sqlite3.connect(path)
    db.execute(
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY, collection TEXT, paths TEXT, status TEXT,
            created REAL, started REAL, finished REAL, progress TEXT, report TEXT,
            error TEXT, kind TEXT)"""
    )
    progress = '{"files_total": 0, "files_done": 0, "chunks_written": 0}'
    db.execute(
        "INSERT INTO jobs VALUES ('old', 'team', '[]', ?, 1.0, ?, NULL, ?, NULL, NULL, 'ingest')",
        (status, started, progress),
    )
    db.commit()
    db.close()


def test_an_older_jobs_table_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    old_jobs_table(path, status="running", started=2.0)
    queue = JobQueue(path, lease_seconds=5)
    # A column added later by other code is tolerated.
    queue._db.execute("ALTER TABLE jobs ADD COLUMN added_elsewhere TEXT")
    old = queue.get("old")
    assert old is not None and (old.status, old.owner, old.attempts) == ("running", None, 0)
    new = queue.enqueue("team", ["/docs"])
    # The running job of a runner from before leases (started long ago) is taken back.
    claimed = queue.claim("host:1:me")
    assert claimed is not None and claimed.id == "old" and claimed.attempts == 1
    assert queue.get(new.id).status == "queued"  # type: ignore[union-attr]
    queue.close()
    JobQueue(path).close()  # opening a migrated table again changes nothing


def test_a_job_table_without_options_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    old_jobs_table(path, status="done", started=None)
    queue = JobQueue(path)
    try:
        before = queue.get("old")
        assert before is not None and before.options == {}
        new = queue.enqueue("c", ["/x"], options={"allow_empty": True})
        assert (stored := queue.get(new.id)) is not None and stored.options == {"allow_empty": True}
    finally:
        queue.close()
