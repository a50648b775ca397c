"""Running queued jobs: claim one, do its work through the function given, record the outcome.

What a job does is not known here (``ingest.jobs`` provides it); the runner only leases, runs,
renews the lease while the work goes on, and records progress, reports and failures in the
queue (``rag.jobs``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

from rag.jobs import Job, JobProgressInfo, JobQueue, runner_id

log = logging.getLogger(__name__)


class JobObserver(Protocol):
    """Told of the work of the jobs a runner runs (the service's metrics). Called on the
    runner's threads; it must be quick and must not raise."""

    def chunks_written(self, count: int) -> None:
        """A running job wrote ``count`` more chunks."""
        ...

    def job_ended(self, job: Job, status: Literal["done", "failed"], seconds: float) -> None:
        """A job this runner ran ended, ``seconds`` after it was claimed."""
        ...


class JobProgress:
    """Progress of a running job (files and chunks), written to the queue at most a few times
    a second. It has the shape of ``ingest.pipeline.IngestProgress``."""

    def __init__(self, queue: JobQueue, job_id: str, observer: JobObserver | None = None) -> None:
        self._queue = queue
        self._id = job_id
        self._observer = observer
        self._info = JobProgressInfo()
        self._last = 0.0

    def start(self, total_files: int) -> None:
        self._info.files_total = total_files
        self._flush(force=True)

    def advance(self, *, files: int = 0, chunks: int = 0) -> None:
        self._info.files_done += files
        self._info.chunks_written += chunks
        if chunks and self._observer is not None:
            self._observer.chunks_written(chunks)
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
    """Claims jobs and runs them one at a time on a background thread (or in the foreground),
    renewing the running job's lease on a thread of its own. ``observer`` is told of the
    chunks its jobs write and of how each ended."""

    def __init__(
        self,
        queue: JobQueue,
        run: RunJob,
        *,
        poll_seconds: float = 0.5,
        owner: str | None = None,
        observer: JobObserver | None = None,
    ) -> None:
        self._queue = queue
        self._run = run
        self._observer = observer
        self._poll = poll_seconds
        self.owner = owner or runner_id()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._queue.requeue_expired()
        self._thread = threading.Thread(target=self.loop, name="ingest-jobs", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop claiming jobs and wait up to ``timeout`` seconds for the running one; True
        when the runner stopped. A job still running is left to its lease: another runner
        takes it back once the lease expires."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            return not self._thread.is_alive()
        return True

    def loop(self) -> None:
        while not self._stop.is_set():
            if not self.run_one():
                self._wake.wait(self._poll)
                self._wake.clear()

    def run_one(self) -> bool:
        job = self._queue.claim(self.owner)
        if job is None:
            return False
        log.info(
            "job %s: %s %r %s (attempt %d)",
            job.id,
            job.kind,
            job.collection,
            ", ".join(job.paths),
            job.attempts,
        )
        done = threading.Event()
        beat = threading.Thread(
            target=self._beat, args=(job.id, done), name=f"job-{job.id[:8]}-lease", daemon=True
        )
        beat.start()
        started = time.monotonic()
        status: Literal["done", "failed"] = "failed"
        try:
            report = self._run(job, JobProgress(self._queue, job.id, self._observer))
        except Exception as exc:  # the job fails, the runner goes on
            log.exception("job %s failed", job.id)
            self._queue.fail(job.id, str(exc), owner=self.owner)
        else:
            self._queue.finish(job.id, report, owner=self.owner)
            status = "done"
        finally:
            done.set()
            beat.join()
            if self._observer is not None:
                self._observer.job_ended(job, status, time.monotonic() - started)
        return True

    def _beat(self, job_id: str, done: threading.Event) -> None:
        while not done.wait(self._queue.lease_seconds / 3):
            if not self._queue.heartbeat(job_id, self.owner):
                log.error("job %s: the lease was lost; another runner may take it", job_id)
                return
