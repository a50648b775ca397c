"""Ingestion jobs: a durable queue (SQLite under DATA_DIR) and the loop that runs them.

The API enqueues; a runner claims a job and hands it to the function it was given, which
does the work (``ingest.jobs`` provides it). With the embedded store the runner is a thread
in the service (Edge admits one process); with a Qdrant server it can also be `rag worker`,
a process of its own sharing DATA_DIR.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "done", "failed"]
JobKind = Literal["ingest", "reindex"]


@dataclass
class JobProgressInfo:
    files_total: int = 0
    files_done: int = 0
    chunks_written: int = 0


@dataclass
class Job:
    id: str
    collection: str
    paths: list[str]
    status: JobStatus
    created: float
    started: float | None = None
    finished: float | None = None
    progress: JobProgressInfo = field(default_factory=JobProgressInfo)
    report: dict[str, Any] | None = None
    error: str | None = None
    kind: JobKind = "ingest"
    options: dict[str, Any] = field(default_factory=dict)
    """How the executor runs the job (JSON-ready), e.g. the folders an API ingestion is
    confined to; the queue stores it and does not read it."""


class JobQueue:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=30
        )
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                """CREATE TABLE IF NOT EXISTS jobs (
                    id TEXT PRIMARY KEY, collection TEXT, paths TEXT, status TEXT,
                    created REAL, started REAL, finished REAL, progress TEXT, report TEXT,
                    error TEXT, kind TEXT)"""
            )
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
            if "options" not in columns:  # added after the table's first version
                self._db.execute("ALTER TABLE jobs ADD COLUMN options TEXT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def enqueue(
        self,
        collection: str,
        paths: Sequence[str],
        kind: JobKind = "ingest",
        *,
        options: Mapping[str, Any] | None = None,
    ) -> Job:
        job = Job(
            uuid.uuid4().hex,
            collection,
            list(paths),
            "queued",
            time.time(),
            kind=kind,
            options=dict(options or {}),
        )
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, collection, paths, status, created, progress, kind, options)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    collection,
                    json.dumps(job.paths),
                    job.status,
                    job.created,
                    json.dumps(asdict(job.progress)),
                    kind,
                    json.dumps(job.options),
                ),
            )
        return job

    def claim(self) -> Job | None:
        """The oldest queued job, marked running, or None; atomic across processes."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT id FROM jobs WHERE status = 'queued' ORDER BY created LIMIT 1"
                ).fetchone()
                if row is not None:
                    self._db.execute(
                        "UPDATE jobs SET status = 'running', started = ? WHERE id = ?",
                        (time.time(), row[0]),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(row[0]) if row is not None else None

    def requeue_running(self) -> int:
        """Jobs left 'running' by a process that died are run again (ingestion is idempotent)."""
        with self._lock:
            cursor = self._db.execute("UPDATE jobs SET status = 'queued' WHERE status = 'running'")
        return cursor.rowcount

    def progress(self, job_id: str, info: JobProgressInfo) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET progress = ? WHERE id = ?", (json.dumps(asdict(info)), job_id)
            )

    def finish(self, job_id: str, report: Mapping[str, Any]) -> None:
        """Mark a job done with its report (JSON-ready data)."""
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status = 'done', finished = ?, report = ? WHERE id = ?",
                (time.time(), json.dumps(report), job_id),
            )

    def fail(self, job_id: str, error: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status = 'failed', finished = ?, error = ? WHERE id = ?",
                (time.time(), error, job_id),
            )

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        return _job(row) if row else None

    def list(self, limit: int = 50) -> list[Job]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs ORDER BY created DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_job(r) for r in rows]


_COLUMNS = (
    "id, collection, paths, status, created, started, finished, progress, report, error, kind, "
    "options"
)


def _job(row: Sequence[Any]) -> Job:
    return Job(
        id=row[0],
        collection=row[1],
        paths=json.loads(row[2]),
        status=row[3],
        created=row[4],
        started=row[5],
        finished=row[6],
        progress=JobProgressInfo(**json.loads(row[7])),
        report=json.loads(row[8]) if row[8] else None,
        error=row[9],
        kind=row[10] or "ingest",
        options=json.loads(row[11]) if row[11] else {},
    )


class JobProgress:
    """Progress of a running job (files and chunks), written to the queue at most a few times
    a second. It has the shape of ``ingest.pipeline.IngestProgress``."""

    def __init__(self, queue: JobQueue, job_id: str) -> None:
        self._queue = queue
        self._id = job_id
        self._info = JobProgressInfo()
        self._last = 0.0

    def start(self, total_files: int) -> None:
        self._info.files_total = total_files
        self._flush(force=True)

    def advance(self, *, files: int = 0, chunks: int = 0) -> None:
        self._info.files_done += files
        self._info.chunks_written += chunks
        self._flush()

    def finish(self) -> None:
        self._flush(force=True)

    def _flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last > 0.25:
            self._last = now
            self._queue.progress(self._id, self._info)


RunJob = Callable[[Job, JobProgress], Mapping[str, Any]]
"""Does a claimed job's work and returns its report as JSON-ready data."""


class JobRunner:
    """Claims jobs and runs them one at a time on a background thread (or in the foreground)."""

    def __init__(self, queue: JobQueue, run: RunJob, *, poll_seconds: float = 0.5) -> None:
        self._queue = queue
        self._run = run
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._queue.requeue_running()
        self._thread = threading.Thread(target=self.loop, name="ingest-jobs", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def loop(self) -> None:
        while not self._stop.is_set():
            if not self.run_one():
                self._wake.wait(self._poll)
                self._wake.clear()

    def run_one(self) -> bool:
        job = self._queue.claim()
        if job is None:
            return False
        log.info("job %s: %s %r %s", job.id, job.kind, job.collection, ", ".join(job.paths))
        try:
            report = self._run(job, JobProgress(self._queue, job.id))
        except Exception as exc:  # the job fails, the runner goes on
            log.exception("job %s failed", job.id)
            self._queue.fail(job.id, str(exc))
        else:
            self._queue.finish(job.id, report)
        return True
