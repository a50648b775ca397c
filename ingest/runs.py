"""Ingestion runs over a collection: sync folders into it (once, as a dry run, or watching),
rebuild it, and list or delete its documents. Built from Settings; the collection's store
and ingestion state are opened here and closed before returning."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.loaders import SUPPORTED_EXTENSIONS
from ingest.pipeline import IngestPipeline, IngestProgress, IngestReport, settings_signature
from ingest.state import SyncState
from ingest.sync import Plan, check_emptied, plan_sync, source_of
from rag.catalog import open_collection, remove_state, state_path
from rag.chunking import make_chunker
from rag.config import Settings
from rag.embedding import Embedder, build_embedder
from rag.errors import (
    CollectionNotFoundError,
    DocumentNotFoundError,
    InvalidInputError,
    StoreLockedError,
)
from rag.store.base import VectorStore
from rag.store.factory import collections_for

log = logging.getLogger(__name__)


def ingest_into(
    settings: Settings,
    store: VectorStore,
    embedder: Embedder,
    paths: Sequence[Path],
    *,
    progress: IngestProgress | None = None,
    confine: Sequence[Path] | None = None,
    allow_empty: bool = False,
) -> IngestReport:
    """Sync ``paths`` into an open collection, then index what was written.

    ``confine``: the folders files must resolve into (the API's ingest roots; None follows
    every symlinked file, as the CLI does). ``allow_empty``: a given folder that is missing
    or empty has its stored documents deleted instead of failing the run. See
    ``ingest.sync.plan_sync``.

    Runs as the collection's one writer (StoreLockedError if another writer is at work)."""
    with collections_for(settings).writer(store.collection):
        state = SyncState(state_path(settings, store.collection))
        try:
            pipeline = IngestPipeline(
                embedder=embedder,
                store=store,
                state=state,
                chunker=make_chunker(settings, embedder),
                max_file_bytes=settings.max_file_bytes,
                batch_chunks=settings.ingest_batch_chunks,
                exclude=settings.ingest_exclude,
            )
            report = pipeline.run(paths, progress, confine=confine, allow_empty=allow_empty)
            if report.changed:
                store.build_index()
            return report
        finally:
            state.close()


def plan_ingest(
    settings: Settings,
    paths: Sequence[Path],
    *,
    embedder: Embedder | None = None,
    confine: Sequence[Path] | None = None,
    allow_empty: bool = False,
) -> Plan:
    """What `rag ingest` would do, computed without opening the store or writing anything."""
    embedder = embedder or build_embedder(settings, bulk=True)
    return plan_sync(
        paths,
        SyncState.read_records(state_path(settings, settings.collection)),
        signature=settings_signature(embedder, make_chunker(settings, embedder)),
        extensions=SUPPORTED_EXTENSIONS,
        max_file_bytes=settings.max_file_bytes,
        exclude=settings.ingest_exclude,
        confine=confine,
        allow_empty=allow_empty,
    )


def check_paths(settings: Settings, paths: Sequence[Path], *, allow_empty: bool = False) -> None:
    """Refuse, before any model loads, given paths that do not exist: an ``InvalidInputError``
    naming the path, which also says how many of its documents are stored (and kept) unless
    ``allow_empty`` asks for their deletion."""
    missing = {
        source_of(Path(p).expanduser()): Path(p)
        for p in paths
        if not Path(p).expanduser().exists() and not Path(p).expanduser().is_symlink()
    }
    if missing:
        records = SyncState.read_records(state_path(settings, settings.collection))
        check_emptied(missing, records, allow_empty=allow_empty)


def _idle_report(
    settings: Settings,
    embedder: Embedder,
    paths: Sequence[Path],
    *,
    confine: Sequence[Path] | None,
    allow_empty: bool,
) -> IngestReport | None:
    """The report of a run with nothing to do, found from the ingestion state alone, so that
    a no-op re-run never opens the store (opening an Edge shard is a large part of such a
    run). None when there is anything to write, or an interrupted run to recover: the
    pipeline then plans again once it holds the store, as another process may have synced
    meanwhile."""
    started = time.perf_counter()
    path = state_path(settings, settings.collection)
    if not path.is_file() or SyncState.read_pending(path):
        return None
    plan = plan_ingest(settings, paths, embedder=embedder, confine=confine, allow_empty=allow_empty)
    if not plan.empty or plan.touched:
        return None
    report = IngestReport(unchanged=list(plan.unchanged), failed=list(plan.failed))
    report.seconds = time.perf_counter() - started
    log.info("ingest: %s", report.summary())
    return report


def watch_ingest(
    settings: Settings,
    paths: Sequence[Path],
    *,
    on_report: Callable[[IngestReport], None],
    stop: threading.Event | None = None,
    allow_empty: bool = False,
) -> None:
    """Sync once, then again whenever files under ``paths`` change, until ``stop`` is set.

    A later sync that finds a watched folder emptied (see ``ingest.sync.plan_sync``) is
    logged and skipped, deleting nothing, and the watch goes on."""
    from watchfiles import watch

    embedder = build_embedder(settings, bulk=True)
    store = open_collection(settings, embedder, create=True)

    def sync(*, first: bool = False) -> None:
        try:
            on_report(ingest_into(settings, store, embedder, paths, allow_empty=allow_empty))
        except StoreLockedError as exc:  # another writer: the next change syncs again
            log.warning("sync skipped: %s", exc)
        except InvalidInputError as exc:  # an emptied folder fails the start, not the watch
            if first:
                raise
            log.error("sync skipped: %s", exc)

    try:
        sync(first=True)
        for changes in watch(*paths, stop_event=stop, debounce=1000, recursive=True):
            log.info("%d changes under the watched folders", len(changes))
            sync()
    finally:
        store.close()


def run_ingest(
    settings: Settings,
    paths: Sequence[Path],
    *,
    collection: str | None = None,
    embedder: Embedder | None = None,
    progress: IngestProgress | None = None,
    confine: Sequence[Path] | None = None,
    allow_empty: bool = False,
) -> IngestReport:
    """Open (creating) the collection, sync ``paths`` into it, close it. ``confine`` and
    ``allow_empty``: see ``ingest_into``."""
    embedder = embedder or build_embedder(settings, bulk=True)
    if collection is not None:
        settings = settings.model_copy(update={"collection": collection})
    idle = _idle_report(settings, embedder, paths, confine=confine, allow_empty=allow_empty)
    if idle is not None:
        return idle
    store = open_collection(settings, embedder, collection=collection, create=True)
    try:
        return ingest_into(
            settings,
            store,
            embedder,
            paths,
            progress=progress,
            confine=confine,
            allow_empty=allow_empty,
        )
    finally:
        store.close()


def reindex(
    settings: Settings,
    embedder: Embedder | None = None,
    *,
    collection: str | None = None,
    switching: Callable[[], contextlib.AbstractContextManager[None]] | None = None,
    progress: IngestProgress | None = None,
) -> IngestReport:
    """Rebuild a collection with the current embedding model and chunking settings.

    The new collection is built beside the old one, which keeps serving; then the two are
    switched: an alias moved atomically on a Qdrant server, a folder swap on the embedded
    store. ``switching`` brackets the switch: the service closes the old collection in it and
    holds its lock, so queries wait a moment instead of failing. Without it (a process that
    does not serve the collection) the collection's lock is held throughout, so a rebuild
    refuses to start, with StoreLockedError, while another process has the collection open
    on the embedded store. The collection's writer lock is held throughout in both cases;
    ``embedder`` (default: built from ``settings``) is loaded once both locks are held.
    Files are read again from their paths; those gone since are left out.
    """
    name = collection or settings.collection
    collections = collections_for(settings)
    with contextlib.ExitStack() as held:
        held.enter_context(collections.writer(name))
        if switching is None:
            held.enter_context(collections.lock(name))
            switching = contextlib.nullcontext
        embedder = embedder or build_embedder(settings, bulk=True)  # once the locks are held
        return _reindex(settings, embedder, name, switching=switching, progress=progress)


def _reindex(
    settings: Settings,
    embedder: Embedder,
    name: str,
    *,
    switching: Callable[[], contextlib.AbstractContextManager[None]],
    progress: IngestProgress | None,
) -> IngestReport:
    records = SyncState.read_records(state_path(settings, name))
    if not records:
        raise CollectionNotFoundError(f"collection {name!r} has no ingested documents to rebuild")
    files = [Path(s) for s in sorted(records) if Path(s).is_file()]
    collections = collections_for(settings)
    built = collections.staging_name(name)
    remove_state(settings, built)
    store = open_collection(settings, embedder, collection=built, create=True)
    try:
        report = ingest_into(settings, store, embedder, files, progress=progress)
    finally:
        store.close()
    with switching():
        collections.swap(name, built)
        # The old state stays whole until the new one replaces it in one rename: a crash
        # here leaves the rebuilt collection with the old state, whose files the next run
        # re-syncs (chunk ids depend only on the text), never a collection with no state.
        current = state_path(settings, name)
        for suffix in ("-wal", "-shm"):  # a closed database has none; never pair them with
            Path(f"{current}{suffix}").unlink(missing_ok=True)  # the new file
        state_path(settings, built).replace(current)
    log.info("reindexed %r: %s", name, report.summary())
    return report


@dataclass(frozen=True)
class DocumentInfo:
    source: str
    chunks: int
    size: int
    sha256: str


def list_documents(settings: Settings, collection: str) -> list[DocumentInfo]:
    """The documents ingested into ``collection``, by source."""
    records = SyncState.read_records(state_path(settings, collection))
    return [
        DocumentInfo(r.source, len(r.chunk_ids), r.size, r.sha256)
        for r in sorted(records.values(), key=lambda r: r.source)
    ]


def delete_document(settings: Settings, store: VectorStore, source: str) -> int:
    """Remove one document's chunks and its state, as the collection's writer; returns how
    many chunks went."""
    with collections_for(settings).writer(store.collection):
        state = SyncState(state_path(settings, store.collection))
        try:
            record = state.records().get(source)
            if record is None:
                raise DocumentNotFoundError(
                    f"no document {source!r} in collection {store.collection!r}"
                )
            store.delete(list(record.chunk_ids))
            store.delete_source(source)  # and anything a crashed run may have left under it
            store.flush()
            state.forget([source])
            return len(record.chunk_ids)
        finally:
            state.close()
