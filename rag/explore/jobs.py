"""Map builds as background jobs of the process that serves the collection, one at a time
per collection, with their progress. A map is derived data: a build that dies is simply
started again, so these jobs need no durable queue."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from rag.explore.maps import Progress

log = logging.getLogger(__name__)

MapJobStatus = Literal["running", "done", "failed"]


@dataclass(frozen=True)
class MapJob:
    collection: str
    status: MapJobStatus
    started: float
    phase: str = "starting"
    """starting, reading, fitting, placing, labelling, outliers, done"""
    done: int = 0
    total: int = 0
    finished: float | None = None
    error: str | None = None


class MapJobs:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, MapJob] = {}
        self._threads: dict[str, threading.Thread] = {}

    def start(self, collection: str, work: Callable[[Progress], None]) -> MapJob:
        """Run ``work`` on a thread of its own, or return the collection's running job."""
        with self._lock:
            job = self._jobs.get(collection)
            if job is not None and job.status == "running":
                return job
            job = self._jobs[collection] = MapJob(collection, "running", time.time())
            thread = threading.Thread(
                target=self._run, args=(collection, work), name=f"map-{collection}", daemon=True
            )
            self._threads[collection] = thread
            thread.start()
            return job

    def get(self, collection: str) -> MapJob | None:
        with self._lock:
            return self._jobs.get(collection)

    def wait(self, collection: str, timeout: float | None = None) -> MapJob | None:
        """The job once it has ended (or ``timeout`` passed)."""
        with self._lock:
            thread = self._threads.get(collection)
        if thread is not None:
            thread.join(timeout)
        return self.get(collection)

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds in all for the running builds; False if one still
        runs (its collection must then stay open)."""
        with self._lock:
            threads = list(self._threads.values())
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def _update(self, collection: str, **changes: object) -> None:
        with self._lock:
            self._jobs[collection] = replace(self._jobs[collection], **changes)  # type: ignore[arg-type]

    def _run(self, collection: str, work: Callable[[Progress], None]) -> None:
        def progress(phase: str, done: int, total: int) -> None:
            self._update(collection, phase=phase, done=done, total=total)

        try:
            work(progress)
        except Exception as exc:  # a failed build is reported with the job, not raised
            log.exception("the map of %r failed", collection)
            self._update(collection, status="failed", finished=time.time(), error=str(exc))
        else:
            self._update(collection, status="done", phase="done", finished=time.time())
