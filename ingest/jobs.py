"""Runs the job queue's ingestion and reindex jobs, in the service or as `rag worker`.

The API only enqueues (``rag.jobs``); what a job does is defined here. Start-up code wires a
``JobExecutor`` to a ``JobRunner``: inside the service for the embedded store (one process
may open an Edge shard), or in a process of its own (``run_worker``) for a Qdrant server.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

from ingest.runs import ingest_into, reindex, run_ingest, watch_ingest
from rag.config import Settings
from rag.embedding import Embedder, build_embedder
from rag.errors import StoreLockedError
from rag.job_runner import JobProgress, JobRunner
from rag.jobs import Job, JobQueue
from rag.store.base import VectorStore
from rag.store.factory import collections_for

log = logging.getLogger(__name__)

# How often a job waiting for another process's write to its collection checks again.
WRITER_POLL_SECONDS = 1.0
# How long a stopping worker waits for its running job before leaving it to the job's lease.
STOP_GRACE_SECONDS = 10.0

OpenStore = Callable[[str], VectorStore]
"""An open collection by name, created if missing, owned by the caller (not closed here)."""
Switching = Callable[[str], contextlib.AbstractContextManager[None]]
"""Brackets the moment a rebuilt collection replaces the old one (see ``ingest.runs.reindex``)."""


class JobExecutor:
    """Does a claimed job's work: an ingestion into its collection, or a rebuild.

    With ``open_store`` the collections are the caller's open ones (the service shares them
    with its queries); without it, each ingestion opens and closes its collection.

    An ingestion job's options (``ingest_options``) carry what the request asked for: the
    folders its files must resolve into (``confine``, checked as the files are walked, so in
    whichever process runs the job) and ``allow_empty``.
    """

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        *,
        open_store: OpenStore | None = None,
        switching: Switching | None = None,
    ) -> None:
        self._settings = settings
        self._embedder = embedder
        self._open_store = open_store
        self._switching = switching

    def __call__(self, job: Job, progress: JobProgress) -> Mapping[str, Any]:
        self._wait_for_writer(job.collection)
        if job.kind == "reindex":
            switching = self._switching
            report = reindex(
                self._settings,
                self._embedder,
                collection=job.collection,
                switching=(lambda: switching(job.collection)) if switching is not None else None,
                progress=progress,
            )
        elif self._open_store is not None:
            report = ingest_into(
                self._settings,
                self._open_store(job.collection),
                self._embedder,
                [Path(p) for p in job.paths],
                progress=progress,
                **_ingest_args(job.options),
            )
        else:
            report = run_ingest(
                self._settings,
                [Path(p) for p in job.paths],
                collection=job.collection,
                embedder=self._embedder,
                progress=progress,
                **_ingest_args(job.options),
            )
        return report.to_dict()

    def _wait_for_writer(self, collection: str) -> None:
        """Wait while another process (a `rag ingest`, a watch) writes to the collection, so
        that the job runs after it rather than failing; the job's lease is renewed meanwhile.
        A writer that slips in between still makes the job fail, with its name."""
        collections = collections_for(self._settings)
        waiting = False
        while True:
            try:
                with collections.writer(collection):
                    return
            except StoreLockedError as exc:
                if not waiting:
                    log.info("waiting for the collection's writer: %s", exc)
                    waiting = True
                time.sleep(WRITER_POLL_SECONDS)


def ingest_options(
    *, confine: Sequence[Path] | None = None, allow_empty: bool = False
) -> dict[str, Any]:
    """An ingestion job's options, as the queue stores them (see ``JobExecutor``)."""
    options: dict[str, Any] = {"allow_empty": allow_empty}
    if confine is not None:
        options["confine"] = [str(p) for p in confine]
    return options


class _IngestArgs(TypedDict):
    confine: list[Path] | None
    allow_empty: bool


def _ingest_args(options: Mapping[str, Any]) -> _IngestArgs:
    confine = options.get("confine")
    return {
        "confine": None if confine is None else [Path(p) for p in confine],
        "allow_empty": bool(options.get("allow_empty", False)),
    }


def run_worker(
    settings: Settings, *, watch: Sequence[Path] = (), stop: threading.Event | None = None
) -> None:
    """`rag worker`: run the API's queued jobs, of every kind, in a process of its own, and
    keep ``watch`` folders in sync, until ``stop`` is set. Meant for a Qdrant server; the
    embedded store admits one process, so it cannot run beside `rag serve` there."""
    stop = stop or threading.Event()
    embedder = build_embedder(settings, bulk=True)
    if collections_for(settings).exclusive:
        log.warning(
            "rag worker with the embedded store: it cannot run while `rag serve` holds the "
            "store open; use RAG_STORE=qdrant to run both"
        )
    watcher = None
    if watch:
        watcher = threading.Thread(
            target=watch_ingest,
            args=(settings, watch),
            kwargs={"on_report": lambda r: log.info("sync: %s", r.summary()), "stop": stop},
            name="watch",
            daemon=True,
        )
        watcher.start()
    queue = JobQueue.for_settings(settings)
    runner = JobRunner(queue, JobExecutor(settings, embedder))
    runner.start()
    log.info(
        "worker %s ready: running jobs from %s", runner.owner, settings.data_dir / "jobs.sqlite"
    )
    try:
        while not stop.wait(1.0):  # a timed wait lets signal handlers run
            pass
    finally:
        log.info("worker stopping")
        if runner.stop(timeout=STOP_GRACE_SECONDS):
            queue.close()
        else:
            log.warning("a job is still running; it is left for another runner to take back")
