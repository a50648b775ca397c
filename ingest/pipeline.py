"""Runs load -> chunk -> embed -> upsert in batches, with progress and per-file errors.

Order of writes, so that a crash at any point is repaired by the next run:
1. the new chunk ids of a batch's files go to the state's intent log (``pending``);
2. the chunks are embedded and upserted (ids are content-derived, so a re-run rewrites the
   same points rather than duplicating them);
3. the files' previous chunks that the new version no longer has are deleted;
4. the store is flushed (``VectorStore.flush``), so what it holds is on disk;
5. the files' rows are committed and their intent entries cleared, in one transaction.
A changed file's new chunks are therefore in the store before its old ones go, and whatever
the state records as committed is durable in the store. Deleted files follow the same rule:
their chunks are deleted and flushed before their rows go. On start, the intent log of an
interrupted run is replayed: chunks it wrote but never committed are removed.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from ingest.loaders import LOADER_VERSION, SUPPORTED_EXTENSIONS, load_document
from ingest.state import SyncState
from ingest.sync import Change, FileError, FileRecord, Move, Plan, plan_sync
from rag.chunking import TokenChunker, chunk_id
from rag.embedding import Embedder
from rag.errors import LoaderError
from rag.store.base import VectorStore
from rag.types import Chunk

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# Files parsed and chunked ahead of the one being embedded. Parsing runs in a thread while
# ONNX Runtime (which releases the GIL) embeds the previous batch, so it no longer adds to
# the wall time; the bound keeps memory flat however large the folder.
_LOOKAHEAD_FILES = 32


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[FileError] = field(default_factory=list)
    chunks_written: int = 0
    chunks_reused: int = 0
    """Chunks of changed files whose text and headings did not change: their stored vectors
    were reused instead of embedding them again."""
    embed_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced or self.deleted or self.moved)

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.replaced)} replaced, {len(self.deleted)} "
            f"deleted, {len(self.moved)} moved, {len(self.unchanged)} unchanged, "
            f"{len(self.failed)} failed; {self.chunks_written} chunks written"
            + (f" ({self.chunks_reused} unchanged, not re-embedded)" if self.chunks_reused else "")
            + f" in {self.seconds:.1f}s"
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, with ``ok``."""
        return asdict(self) | {"ok": self.ok}


class IngestProgress(Protocol):
    def start(self, total_files: int) -> None: ...

    def advance(self, *, files: int = 0, chunks: int = 0) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    def start(self, total_files: int) -> None:
        pass

    def advance(self, *, files: int = 0, chunks: int = 0) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass
class _ParsedFile:
    change: Change
    record: FileRecord
    chunks: list[Chunk]


def settings_signature(embedder: Embedder, chunker: TokenChunker) -> str:
    """What shaped a file's chunks; a file stored under another signature is rebuilt. Its
    first part names the embedding model (``same_embedding``)."""
    return (
        f"embed={embedder.model_name}:{embedder.dimension};"
        f"chunker={chunker.signature};loader={LOADER_VERSION}"
    )


def same_embedding(signature: str, other: str) -> bool:
    """Whether two settings signatures embed alike: a chunk whose embedded text is the same
    under both has the same vector, so a rebuild for a new chunker or loader re-embeds only
    the chunks whose text it changed."""
    # The model's name comes first and may be a path: cut at the chunker, which follows it.
    return signature.rpartition(";chunker=")[0] == other.rpartition(";chunker=")[0]


class IngestPipeline:
    def __init__(
        self,
        *,
        embedder: Embedder,
        store: VectorStore,
        state: SyncState,
        chunker: TokenChunker,
        max_file_bytes: int,
        batch_chunks: int = 256,
        exclude: Sequence[str] = (),
    ) -> None:
        self._embedder = embedder
        self._store = store
        self._state = state
        self._chunker = chunker
        self._max_bytes = max_file_bytes
        self._batch_chunks = batch_chunks
        self._exclude = tuple(exclude)
        self._signature = settings_signature(embedder, chunker)

    def plan(
        self,
        paths: Sequence[Path],
        *,
        confine: Sequence[Path] | None = None,
        allow_empty: bool = False,
    ) -> Plan:
        """What a run would do; reads the folders and the state, changes nothing.
        ``confine`` and ``allow_empty``: see ``ingest.sync.plan_sync``."""
        return plan_sync(
            paths,
            self._state.records(),
            signature=self._signature,
            extensions=SUPPORTED_EXTENSIONS,
            max_file_bytes=self._max_bytes,
            exclude=self._exclude,
            confine=confine,
            allow_empty=allow_empty,
        )

    def run(
        self,
        paths: Sequence[Path],
        progress: IngestProgress | None = None,
        *,
        confine: Sequence[Path] | None = None,
        allow_empty: bool = False,
    ) -> IngestReport:
        started = time.perf_counter()
        self.recover()
        plan = self.plan(paths, confine=confine, allow_empty=allow_empty)
        report = self.apply(plan, progress or NoProgress())
        report.seconds = time.perf_counter() - started
        log.info("ingest: %s", report.summary())
        return report

    def recover(self) -> None:
        """Remove chunks that an interrupted run wrote but never committed."""
        pending = self._state.pending()
        if not pending:
            return
        records = self._state.records()
        for source, ids in pending.items():
            kept = set(records[source].chunk_ids) if source in records else set()
            self._store.delete([i for i in ids if i not in kept])
        self._store.flush()
        self._state.forget([s for s in pending if s not in records])
        self._state.commit([records[s] for s in pending if s in records])
        log.info("recovered %d files from an interrupted run", len(pending))

    def apply(self, plan: Plan, progress: IngestProgress) -> IngestReport:
        report = IngestReport(unchanged=list(plan.unchanged), failed=list(plan.failed))
        if plan.touched:
            self._state.commit(plan.touched)  # new mtimes, nothing to embed
        progress.start(len(plan.add) + len(plan.replace) + len(plan.move))
        if plan.delete:
            for record in plan.delete:
                self._store.delete(list(record.chunk_ids))
            self._store.flush()
            self._state.forget([r.source for r in plan.delete])
            report.deleted.extend(r.source for r in plan.delete)
        for move in plan.move:
            self._move(move, report)
            progress.advance(files=1)
        batch: list[_ParsedFile] = []
        for parsed in _prefetched(self._parse, plan.add + plan.replace, _LOOKAHEAD_FILES):
            progress.advance(files=1)
            loaded = self._accept(parsed, report)
            if loaded is None:
                continue
            batch.append(loaded)
            if sum(len(b.chunks) for b in batch) >= self._batch_chunks:
                self._write(batch, report, progress)
                batch = []
        self._write(batch, report, progress)
        progress.finish()
        return report

    def _load(self, change: Change, report: IngestReport) -> _ParsedFile | None:
        return self._accept(self._parse(change), report)

    def _accept(self, parsed: _ParsedFile | FileError, report: IngestReport) -> _ParsedFile | None:
        """The parsed file, or None after reporting why it failed."""
        if isinstance(parsed, FileError):
            return self._failed(report, parsed.path, parsed.reason)
        return parsed

    def _parse(self, change: Change) -> _ParsedFile | FileError:
        """Load and chunk one file; touches nothing shared, so it may run in a thread."""
        path = change.file.path
        try:
            document = load_document(path, source=change.file.source)
            chunks = [c for d in (document, *document.attachments) for c in self._chunker.chunk(d)]
            if not chunks:
                raise LoaderError(str(path), "no extractable text")
        except LoaderError as exc:
            return FileError(str(path), exc.reason)
        except OSError as exc:  # vanished or became unreadable since it was planned
            return FileError(str(path), exc.strerror or str(exc))
        except Exception as exc:  # a parser bug must not stop the other files
            log.exception("failed to load %s", path)
            return FileError(str(path), f"unexpected error: {exc!r}")
        return _ParsedFile(change, self._record(change, chunks), chunks)

    def _record(self, change: Change, chunks: list[Chunk]) -> FileRecord:
        return FileRecord(
            change.file.source,
            change.size,
            change.mtime_ns,
            change.sha256,
            tuple(c.id for c in chunks),
            self._signature,
        )

    @staticmethod
    def _failed(report: IngestReport, path: str, reason: str) -> None:
        report.failed.append(FileError(path, reason))
        log.warning("skipped %s: %s", path, reason)

    def _write(
        self, batch: list[_ParsedFile], report: IngestReport, progress: IngestProgress
    ) -> None:
        if not batch:
            return
        self._state.mark_pending({b.record.source: b.record.chunk_ids for b in batch})
        chunks = [c for b in batch for c in b.chunks]
        stored = self._reusable(batch, chunks)
        written = write_chunks(self._store, self._embedder, chunks, stored=stored)
        report.embed_seconds += written.embed_seconds
        report.chunks_reused += written.chunks - written.embedded
        for b in batch:
            if b.change.previous is not None:
                new = set(b.record.chunk_ids)
                self._store.delete([i for i in b.change.previous.chunk_ids if i not in new])
        self._store.flush()
        self._state.commit([b.record for b in batch])
        for b in batch:
            done = report.replaced if b.change.previous is not None else report.added
            done.append(b.record.source)
        report.chunks_written += len(chunks)
        progress.advance(chunks=len(chunks))

    def _reusable(self, batch: list[_ParsedFile], chunks: list[Chunk]) -> dict[str, np.ndarray]:
        """Stored vectors of the chunks a rebuilt file (edited, or stored under older chunker
        or loader settings) kept as they were (same id, same embedded text, same embedding
        model), by chunk id: written without embedding."""
        kept: list[str] = []
        for b in batch:
            previous = b.change.previous
            if previous is not None and same_embedding(previous.signature, self._signature):
                before = set(previous.chunk_ids)
                kept.extend(chunk.id for chunk in b.chunks if chunk.id in before)
        texts = {c.id: c.embedding_text for c in chunks}
        return {
            chunk.id: vector
            for chunk, vector in self._store.fetch(kept)
            if texts.get(chunk.id) == chunk.embedding_text
        }

    def _move(self, move: Move, report: IngestReport) -> None:
        """Copy the stored chunks and vectors under the new path's ids; no embedding."""
        old, new = move.old, move.new
        stored = self._store.fetch(list(old.chunk_ids))
        if len(stored) != len(old.chunk_ids):  # the store lost some: rebuild from the file
            loaded = self._load(replace(new, previous=old), report)
            if loaded is not None:
                self._write([loaded], report, NoProgress())
                self._state.forget([old.source])
            return
        seen: Counter[tuple[str, str]] = Counter()
        chunks: list[Chunk] = []
        old_stem, new_stem = Path(old.source).stem, Path(new.file.source).stem
        for chunk, _ in stored:
            # An attachment's chunks live under the file's source: OLD/NAME becomes NEW/NAME.
            source = new.file.source + chunk.source[len(old.source) :]
            ordinal = seen[source, chunk.text]
            seen[source, chunk.text] += 1
            title = (
                new_stem if chunk.title == old_stem and source == new.file.source else chunk.title
            )
            chunks.append(
                replace(
                    chunk,
                    id=chunk_id(source, chunk.text, ordinal),
                    source=source,
                    title=title,
                    context=chunk.context.replace(chunk.title, title, 1),
                )
            )
        record = self._record(new, chunks)
        self._state.mark_pending({record.source: record.chunk_ids})
        self._store.upsert(chunks, np.stack([v for _, v in stored]))
        self._store.delete(list(old.chunk_ids))
        self._store.flush()
        self._state.replace(old.source, record)
        report.moved.append(f"{old.source} -> {new.file.source}")


def _prefetched(fn: Callable[[T], R], items: Iterable[T], depth: int) -> Iterator[R]:
    """``map(fn, items)`` in order, computed in one background thread up to ``depth`` items
    ahead of the consumer."""
    source = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-parse") as pool:
        ahead: deque[Future[R]] = deque(pool.submit(fn, i) for i in itertools.islice(source, depth))
        try:
            while ahead:
                result = ahead.popleft().result()
                for item in itertools.islice(source, 1):
                    ahead.append(pool.submit(fn, item))
                yield result
        finally:  # the consumer stopped early (an error, a closed generator): drop the rest
            for future in ahead:
                future.cancel()


@dataclass
class WriteTotals:
    """Running totals of ``write_chunks``: chunks upserted, how many of them were embedded
    (the others were written with a stored vector), and the seconds spent in each step."""

    chunks: int = 0
    embedded: int = 0
    embed_seconds: float = 0.0
    upsert_seconds: float = 0.0


def write_chunks(
    store: VectorStore,
    embedder: Embedder,
    chunks: Sequence[Chunk],
    *,
    batch_chunks: int | None = None,
    stored: Mapping[str, np.ndarray] | None = None,
    on_batch: Callable[[WriteTotals], None] | None = None,
) -> WriteTotals:
    """Embed ``chunks`` and upsert them with their vectors: ingestion's one embed -> upsert
    step, which ``IngestPipeline`` and the evaluation's corpus ingestion share.

    ``batch_chunks`` chunks at a time, or all in one batch when None (``IngestPipeline`` sizes
    its batches by whole files and records them in its state around this call). A chunk
    whose id is in ``stored`` is written with that vector instead of being embedded. Each
    batch is upserted before the next one is embedded; ``on_batch`` then gets the totals.
    Writing a chunk twice rewrites the same point: chunk ids are content-derived.
    """
    totals = WriteTotals()
    stored = stored or {}
    size = batch_chunks or max(len(chunks), 1)
    for start in range(0, len(chunks), size):
        batch = chunks[start : start + size]
        fresh = [c.embedding_text for c in batch if c.id not in stored]
        began = time.perf_counter()
        embedded = embedder.embed_documents(fresh) if fresh else None
        totals.embed_seconds += time.perf_counter() - began
        if embedded is not None and len(fresh) == len(batch):
            vectors = embedded
        else:
            new = iter(embedded if embedded is not None else [])
            vectors = np.stack([stored[c.id] if c.id in stored else next(new) for c in batch])
        began = time.perf_counter()
        store.upsert(batch, vectors)
        totals.upsert_seconds += time.perf_counter() - began
        totals.chunks += len(batch)
        totals.embedded += len(fresh)
        if on_batch is not None:
            on_batch(totals)
    return totals
