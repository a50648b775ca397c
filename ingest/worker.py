"""Runs load -> chunk -> embed -> upsert in batches, with progress and per-file errors.

Order of writes, so that a crash at any point is repaired by the next run:
1. the new chunk ids of a batch's files go to the state's intent log (``pending``);
2. the chunks are embedded and upserted (ids are content-derived, so a re-run rewrites the
   same points rather than duplicating them);
3. the files' previous chunks that the new version no longer has are deleted;
4. the files' rows are committed and their intent entries cleared, in one transaction.
A changed file's new chunks are therefore in the store before its old ones go.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ingest.chunking import TokenChunker
from ingest.loaders import LOADER_VERSION, SUPPORTED_EXTENSIONS, load_document
from ingest.sync import FileRecord, ScannedFile, SyncState, file_sha256, scan, under
from rag.embedding import Embedder
from rag.errors import InvalidInputError, LoaderError
from rag.store.base import VectorStore
from rag.types import Chunk

log = logging.getLogger(__name__)


@dataclass
class FileError:
    path: str
    reason: str


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[FileError] = field(default_factory=list)
    chunks_written: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced or self.deleted)

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.replaced)} replaced, {len(self.deleted)} "
            f"deleted, {len(self.unchanged)} unchanged, {len(self.failed)} failed; "
            f"{self.chunks_written} chunks written in {self.seconds:.1f}s"
        )


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
class _Loaded:
    scanned: ScannedFile
    record: FileRecord
    chunks: list[Chunk]
    previous: FileRecord | None


class IngestWorker:
    def __init__(
        self,
        *,
        embedder: Embedder,
        store: VectorStore,
        state: SyncState,
        chunker: TokenChunker,
        max_file_bytes: int,
        batch_chunks: int = 256,
    ) -> None:
        self._embedder = embedder
        self._store = store
        self._state = state
        self._chunker = chunker
        self._max_bytes = max_file_bytes
        self._batch_chunks = batch_chunks
        self._signature = (
            f"embed={store.info.embedding_model}:{store.info.dimension};"
            f"chunker={chunker.signature};loader={LOADER_VERSION}"
        )

    def run(self, paths: Sequence[Path], progress: IngestProgress | None = None) -> IngestReport:
        progress = progress or NoProgress()
        started = time.perf_counter()
        report = IngestReport()
        self._recover()
        files, roots = scan(paths, SUPPORTED_EXTENSIONS)
        records = self._state.records()
        owned = [s for s in records if any(under(s, root) for root in roots)]
        if not files and not owned:
            shown = ", ".join(str(p) for p in paths)
            raise InvalidInputError(
                f"no supported documents found in {shown} (supported: "
                f"{', '.join(sorted(SUPPORTED_EXTENSIONS))})",
                field="paths",
            )
        present = {f.source for f in files}
        gone = [s for s in owned if s not in present]
        progress.start(len(files))
        self._delete(gone, records, report)
        batch: list[_Loaded] = []
        for scanned in files:
            loaded = self._load(scanned, records.get(scanned.source), report)
            progress.advance(files=1)
            if loaded is None:
                continue
            batch.append(loaded)
            if sum(len(b.chunks) for b in batch) >= self._batch_chunks:
                self._write(batch, report, progress)
                batch = []
        self._write(batch, report, progress)
        progress.finish()
        report.seconds = time.perf_counter() - started
        log.info("ingest: %s", report.summary())
        return report

    def _recover(self) -> None:
        """Remove chunks that a crashed run wrote but never committed."""
        pending = self._state.pending()
        if not pending:
            return
        records = self._state.records()
        for source, ids in pending.items():
            kept = set(records[source].chunk_ids) if source in records else set()
            self._store.delete([i for i in ids if i not in kept])
        self._state.forget([s for s in pending if s not in records])
        self._state.commit([records[s] for s in pending if s in records])
        log.info("recovered %d files from an interrupted run", len(pending))

    def _delete(
        self, sources: list[str], records: dict[str, FileRecord], report: IngestReport
    ) -> None:
        for source in sources:
            self._store.delete(list(records[source].chunk_ids))
        if sources:
            self._state.forget(sources)
        report.deleted.extend(sources)

    def _load(
        self, scanned: ScannedFile, previous: FileRecord | None, report: IngestReport
    ) -> _Loaded | None:
        path = scanned.path
        try:
            stat = path.stat()
            if stat.st_size > self._max_bytes:
                raise LoaderError(
                    str(path),
                    f"file is {stat.st_size} bytes, over the limit of "
                    f"{self._max_bytes} (RAG_MAX_FILE_BYTES)",
                )
            if (
                previous is not None
                and previous.signature == self._signature
                and (previous.size, previous.mtime_ns) == (stat.st_size, stat.st_mtime_ns)
            ):
                report.unchanged.append(scanned.source)
                return None
            digest = file_sha256(path)
            if previous is not None and (previous.sha256, previous.signature) == (
                digest,
                self._signature,
            ):
                # Touched but not changed: remember the new mtime, embed nothing.
                self._state.commit(
                    [
                        FileRecord(
                            scanned.source,
                            stat.st_size,
                            stat.st_mtime_ns,
                            digest,
                            previous.chunk_ids,
                            self._signature,
                        )
                    ]
                )
                report.unchanged.append(scanned.source)
                return None
            document = load_document(path, source=scanned.source)
            chunks = self._chunker.chunk(document)
            if not chunks:
                raise LoaderError(str(path), "no extractable text")
        except LoaderError as exc:
            report.failed.append(FileError(str(path), exc.reason))
            log.warning("skipped %s: %s", path, exc.reason)
            return None
        except OSError as exc:  # vanished, unreadable, symlink loop, ...
            reason = exc.strerror or str(exc)
            report.failed.append(FileError(str(path), reason))
            log.warning("skipped %s: %s", path, reason)
            return None
        except Exception as exc:  # a parser bug must not stop the other files
            report.failed.append(FileError(str(path), f"unexpected error: {exc!r}"))
            log.exception("failed to load %s", path)
            return None
        record = FileRecord(
            scanned.source,
            stat.st_size,
            stat.st_mtime_ns,
            digest,
            tuple(c.id for c in chunks),
            self._signature,
        )
        return _Loaded(scanned, record, chunks, previous)

    def _write(self, batch: list[_Loaded], report: IngestReport, progress: IngestProgress) -> None:
        if not batch:
            return
        self._state.mark_pending({b.record.source: b.record.chunk_ids for b in batch})
        chunks = [c for b in batch for c in b.chunks]
        vectors = self._embedder.embed_documents([c.embedding_text for c in chunks])
        self._store.upsert(chunks, vectors)
        for b in batch:
            if b.previous is not None:
                new = set(b.record.chunk_ids)
                self._store.delete([i for i in b.previous.chunk_ids if i not in new])
        self._state.commit([b.record for b in batch])
        for b in batch:
            (report.replaced if b.previous is not None else report.added).append(b.record.source)
        report.chunks_written += len(chunks)
        progress.advance(chunks=len(chunks))
