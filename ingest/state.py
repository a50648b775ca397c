"""The ingestion state of one collection: a small SQLite file.

It records, for every ingested file, what it looked like (size, mtime, content hash), which
chunk ids it produced, and the settings that shaped them. A ``pending`` table is an intent log:
chunk ids written to the store before the file's row is committed, so a run that crashed
half-way can remove what it left behind.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from ingest.sync import FileRecord

T = TypeVar("T")


class SyncState:
    """Durable per-file state of one collection (SQLite, committed per batch)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS files (
                source TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT,
                chunk_ids TEXT, signature TEXT);
            CREATE TABLE IF NOT EXISTS pending (source TEXT PRIMARY KEY, chunk_ids TEXT);
            """
        )

    @staticmethod
    def read_records(path: Path) -> dict[str, FileRecord]:
        """The stored records without creating or changing anything (for dry runs)."""
        return _read_only(path, _records) or {}

    @staticmethod
    def read_pending(path: Path) -> dict[str, list[str]]:
        """Writes an interrupted run left uncommitted, read without changing anything."""
        return _read_only(path, _pending) or {}

    def close(self) -> None:
        self._db.close()

    def records(self) -> dict[str, FileRecord]:
        return _records(self._db)

    def pending(self) -> dict[str, list[str]]:
        return _pending(self._db)

    def mark_pending(self, entries: dict[str, Sequence[str]]) -> None:
        with self._tx():
            self._db.executemany(
                "INSERT OR REPLACE INTO pending VALUES (?, ?)",
                [(s, json.dumps(list(ids))) for s, ids in entries.items()],
            )

    def commit(self, records: Sequence[FileRecord]) -> None:
        """Store the files' new rows and clear their intent entries, atomically."""
        with self._tx():
            for record in records:
                self._write(record)
            self._db.executemany(
                "DELETE FROM pending WHERE source = ?", [(r.source,) for r in records]
            )

    def replace(self, old: str, record: FileRecord) -> None:
        """A moved file: the old path's row goes, the new one's comes, atomically."""
        with self._tx():
            self._db.execute("DELETE FROM files WHERE source = ?", (old,))
            self._db.execute("DELETE FROM pending WHERE source IN (?, ?)", (old, record.source))
            self._write(record)

    def forget(self, sources: Sequence[str]) -> None:
        with self._tx():
            self._db.executemany("DELETE FROM files WHERE source = ?", [(s,) for s in sources])
            self._db.executemany("DELETE FROM pending WHERE source = ?", [(s,) for s in sources])

    def _write(self, r: FileRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
            (r.source, r.size, r.mtime_ns, r.sha256, json.dumps(list(r.chunk_ids)), r.signature),
        )

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


def _records(db: sqlite3.Connection) -> dict[str, FileRecord]:
    rows = db.execute("SELECT source, size, mtime_ns, sha256, chunk_ids, signature FROM files")
    return {r[0]: FileRecord(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), r[5]) for r in rows}


def _read_only(path: Path, read: Callable[[sqlite3.Connection], T]) -> T | None:
    """``read`` applied to the state file opened read-only; None when there is none yet."""
    if not path.is_file():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return read(db)
    finally:
        db.close()


def _pending(db: sqlite3.Connection) -> dict[str, list[str]]:
    rows = db.execute("SELECT source, chunk_ids FROM pending")
    return {r[0]: json.loads(r[1]) for r in rows}


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
