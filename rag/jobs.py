"""Ingestion jobs: a durable queue (SQLite under DATA_DIR) and the loop that runs them.

The API enqueues; a runner claims a job and hands it to the function it was given, which
does the work (``ingest.jobs`` provides it). With the embedded store the runner is a thread
in the service (Edge admits one process); with a Qdrant server it can also be `rag worker`,
a process of its own sharing DATA_DIR.

A claimed job is leased: it records its runner (``owner``: host, pid and a random part) and a
``heartbeat`` that the runner renews while the job runs. A runner takes a running job back
only once its lease has expired (no heartbeat for ``lease_seconds``), so a second runner
never touches a live runner's job. ``attempts`` counts claims: a job whose runner stopped
``max_attempts`` times without finishing it is marked failed with that reason, so a job that
kills its process is not run forever. Jobs of one collection run one at a time.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from rag.config import Settings

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
    owner: str | None = None
    heartbeat: float | None = None
    attempts: int = 0


# Columns are always named: the table may hold more than this module reads.
_COLUMNS = (
    "id, collection, paths, status, created, started, finished, progress, report, error, "
    "kind, owner, heartbeat, attempts, options"
)
# Added to a table made by an earlier version, in this order.
_ADDED_COLUMNS = (
    ("owner", "TEXT"),
    ("heartbeat", "REAL"),
    ("attempts", "INTEGER DEFAULT 0"),
    ("options", "TEXT"),
)


def runner_id() -> str:
    """A runner's name in the queue: host, pid and a random part (a pid can be reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobQueue:
    """The jobs table. ``lease_seconds``: how long a running job stays its runner's without a
    heartbeat; ``max_attempts``: how many times a job is claimed before a runner that stops
    without finishing it makes it fail."""

    def __init__(self, path: Path, *, lease_seconds: float = 30.0, max_attempts: int = 3) -> None:
        if lease_seconds <= 0 or max_attempts < 1:
            raise ValueError("lease_seconds must be positive and max_attempts at least 1")
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=30
        )
        self._db.row_factory = sqlite3.Row  # rows by column name (and still by index)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("BEGIN IMMEDIATE")  # one process migrates at a time
            try:
                self._db.execute(
                    """CREATE TABLE IF NOT EXISTS jobs (
                        id TEXT PRIMARY KEY, collection TEXT, paths TEXT, status TEXT,
                        created REAL, started REAL, finished REAL, progress TEXT, report TEXT,
                        error TEXT, kind TEXT)"""
                )
                present = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
                for name, declared in _ADDED_COLUMNS:
                    if name not in present:
                        self._db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {declared}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @classmethod
    def for_settings(cls, settings: Settings) -> JobQueue:
        """The queue under DATA_DIR that the API, the service and `rag worker` share."""
        return cls(
            settings.data_dir / "jobs.sqlite",
            lease_seconds=settings.job_lease_seconds,
            max_attempts=settings.job_max_attempts,
        )

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
                "INSERT INTO jobs (id, collection, paths, status, created, progress, kind, "
                "attempts, options) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
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

    def claim(self, owner: str) -> Job | None:
        """The oldest queued job of a collection with no job running, leased to ``owner`` and
        marked running, or None; atomic across processes. Expired leases are taken back
        first (``requeue_expired``)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._requeue_expired()
                row = self._db.execute(
                    "SELECT id FROM jobs WHERE status = 'queued' AND collection NOT IN "
                    "(SELECT collection FROM jobs WHERE status = 'running') "
                    "ORDER BY created LIMIT 1"
                ).fetchone()
                if row is not None:
                    now = time.time()
                    self._db.execute(
                        "UPDATE jobs SET status = 'running', started = ?, owner = ?, "
                        "heartbeat = ?, attempts = COALESCE(attempts, 0) + 1 WHERE id = ?",
                        (now, owner, now, row[0]),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(row[0]) if row is not None else None

    def requeue_expired(self) -> int:
        """Running jobs whose lease expired (their runner died or hung) are queued again, or
        failed once they were claimed ``max_attempts`` times; returns how many changed. Jobs
        that a live runner still heartbeats are left alone."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                changed = self._requeue_expired()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return changed

    def _requeue_expired(self) -> int:
        """With the lock held, inside a transaction."""
        now = time.time()
        expired = self._db.execute(
            "SELECT id, owner, COALESCE(attempts, 0) FROM jobs WHERE status = 'running' "
            "AND COALESCE(heartbeat, started, 0) < ?",
            (now - self.lease_seconds,),
        ).fetchall()
        for job_id, owner, attempts in expired:
            if attempts >= self.max_attempts:
                reason = (
                    f"the process running it stopped before it finished, {attempts} times "
                    f"(last: {owner}); it is not run again"
                )
                log.error("job %s failed: %s", job_id, reason)
                self._db.execute(
                    "UPDATE jobs SET status = 'failed', finished = ?, error = ? WHERE id = ?",
                    (now, reason, job_id),
                )
            else:
                log.warning("job %s: runner %s stopped heartbeating; queued again", job_id, owner)
                self._db.execute(
                    "UPDATE jobs SET status = 'queued', owner = NULL WHERE id = ?", (job_id,)
                )
        return len(expired)

    def heartbeat(self, job_id: str, owner: str) -> bool:
        """Renew ``owner``'s lease on a running job; False when it is no longer its own."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE jobs SET heartbeat = ? WHERE id = ? AND owner = ? AND status = 'running'",
                (time.time(), job_id, owner),
            )
        return cursor.rowcount == 1

    def progress(self, job_id: str, info: JobProgressInfo) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET progress = ? WHERE id = ?", (json.dumps(asdict(info)), job_id)
            )

    def finish(self, job_id: str, report: Mapping[str, Any], *, owner: str | None = None) -> None:
        """Mark a job done with its report (JSON-ready data); with ``owner``, only if the job
        is still leased to it."""
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status = 'done', finished = ?, report = ? WHERE id = ?"
                + _owned(owner),
                (time.time(), json.dumps(report), job_id, *_owner_arg(owner)),
            )

    def fail(self, job_id: str, error: str, *, owner: str | None = None) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status = 'failed', finished = ?, error = ? WHERE id = ?"
                + _owned(owner),
                (time.time(), error, job_id, *_owner_arg(owner)),
            )

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        return _job(row) if row else None

    def counts(self) -> dict[JobStatus, int]:
        """How many jobs are in each status, every status included."""
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        counts = dict.fromkeys(get_args(JobStatus), 0)
        counts.update((status, count) for status, count in rows if status in counts)
        return counts

    def list(self, limit: int = 50) -> list[Job]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs ORDER BY created DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_job(r) for r in rows]


def _owned(owner: str | None) -> str:
    return "" if owner is None else " AND owner = ? AND status = 'running'"


def _owner_arg(owner: str | None) -> tuple[str, ...]:
    return () if owner is None else (owner,)


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        collection=row["collection"],
        paths=json.loads(row["paths"]),
        status=row["status"],
        created=row["created"],
        started=row["started"],
        finished=row["finished"],
        progress=JobProgressInfo(**json.loads(row["progress"])),
        report=json.loads(row["report"]) if row["report"] else None,
        error=row["error"],
        kind=row["kind"] or "ingest",
        owner=row["owner"],
        heartbeat=row["heartbeat"],
        attempts=row["attempts"] or 0,
        options=json.loads(row["options"]) if row["options"] else {},
    )
