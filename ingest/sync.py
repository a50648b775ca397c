"""Folder state vs stored state: which files to add, replace, delete or leave alone.

The state is a small SQLite file per collection. It records, for every ingested file, what it
looked like (size, mtime, content hash), which chunk ids it produced, and the settings that
shaped them. A ``pending`` table is an intent log: chunk ids written to the store before the
file's row is committed, so a run that crashed half-way can remove what it left behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.errors import InvalidInputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileRecord:
    source: str
    size: int
    mtime_ns: int
    sha256: str
    chunk_ids: tuple[str, ...]
    signature: str


@dataclass(frozen=True)
class ScannedFile:
    path: Path
    source: str
    explicit: bool  # named on the command line, not found by walking a folder


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_of(path: Path) -> str:
    """A file's identity: its absolute path, with symlinks in its folders resolved."""
    return str(path.parent.resolve() / path.name)


def scan(paths: Sequence[Path], extensions: Iterable[str]) -> tuple[list[ScannedFile], list[str]]:
    """Files under the given paths with a supported extension, in sorted order.

    Returns the files and the roots (absolute) whose stored files the sync owns. Hidden
    files and folders are skipped; symlinked folders are not followed (no loops).
    """
    wanted = {e.lower() for e in extensions}
    files: list[ScannedFile] = []
    roots: list[str] = []
    for given in paths:
        path = Path(given).expanduser()
        if not path.exists() and not path.is_symlink():
            raise InvalidInputError(f"{given}: no such file or folder", field="paths")
        if path.is_dir():
            root = path.resolve()
            roots.append(str(root))
            files.extend(
                ScannedFile(p, source_of(p), explicit=False)
                for p in _walk(root)
                if p.suffix.lower() in wanted
            )
        else:
            # A named file is always attempted: an unsupported type becomes a clear error.
            files.append(ScannedFile(path, source_of(path), explicit=True))
            roots.append(source_of(path))
    unique = {f.source: f for f in files}
    return [unique[s] for s in sorted(unique)], roots


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if not name.startswith("."):
                yield Path(folder) / name


def under(source: str, root: str) -> bool:
    return source == root or source.startswith(root.rstrip("/") + "/")


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

    def close(self) -> None:
        self._db.close()

    def records(self) -> dict[str, FileRecord]:
        rows = self._db.execute(
            "SELECT source, size, mtime_ns, sha256, chunk_ids, signature FROM files"
        )
        return {
            r[0]: FileRecord(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), r[5]) for r in rows
        }

    def pending(self) -> dict[str, list[str]]:
        rows = self._db.execute("SELECT source, chunk_ids FROM pending")
        return {r[0]: json.loads(r[1]) for r in rows}

    def mark_pending(self, entries: dict[str, Sequence[str]]) -> None:
        with self._tx():
            self._db.executemany(
                "INSERT OR REPLACE INTO pending VALUES (?, ?)",
                [(s, json.dumps(list(ids))) for s, ids in entries.items()],
            )

    def commit(self, records: Sequence[FileRecord]) -> None:
        """Store the files' new rows and clear their intent entries, atomically."""
        with self._tx():
            self._db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.source,
                        r.size,
                        r.mtime_ns,
                        r.sha256,
                        json.dumps(list(r.chunk_ids)),
                        r.signature,
                    )
                    for r in records
                ],
            )
            self._db.executemany(
                "DELETE FROM pending WHERE source = ?", [(r.source,) for r in records]
            )

    def forget(self, sources: Sequence[str]) -> None:
        with self._tx():
            self._db.executemany("DELETE FROM files WHERE source = ?", [(s,) for s in sources])
            self._db.executemany("DELETE FROM pending WHERE source = ?", [(s,) for s in sources])

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
