"""Folder state vs stored state: which files to add, replace, move, delete or leave alone.

The stored side is the records ``ingest.state.SyncState`` keeps per collection; planning reads
them and the folders, and changes nothing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TypeVar

from rag.errors import InvalidInputError, PermissionDeniedError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class FileRecord:
    """One ingested file as stored: how it looked, the chunks it gave, what shaped them."""

    source: str
    size: int
    mtime_ns: int
    sha256: str
    chunk_ids: tuple[str, ...]
    signature: str


@dataclass(frozen=True)
class ScannedFile:
    """A file found by ``scan``, with the identity it is stored under."""

    path: Path
    source: str
    explicit: bool  # named on the command line, not found by walking a folder


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of the file's content, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_of(path: Path) -> str:
    """A file's identity: its absolute path, with symlinks in its folders resolved."""
    return str(path.parent.resolve() / path.name)


@dataclass(frozen=True)
class FileError:
    path: str
    reason: str


@dataclass
class Scan:
    """What ``scan`` found under the given paths."""

    files: list[ScannedFile]
    roots: list[str]
    """The roots (absolute) whose stored files the sync owns, one per given path."""
    seen: dict[str, int]
    """How many supported files each root held, refused ones included."""
    missing: dict[str, Path]
    """Given paths that do not exist, by root."""
    refused: list[FileError]
    """Files reached through a symlink that resolves outside ``confine``."""


OUTSIDE_ROOTS = "symbolic link to a file outside the allowed ingest roots (RAG_INGEST_ROOTS)"


def scan(
    paths: Sequence[Path],
    extensions: Iterable[str],
    exclude: Sequence[str] = (),
    *,
    confine: Sequence[Path] | None = None,
) -> Scan:
    """Files under the given paths with a supported extension, in sorted order.

    Hidden files and folders are skipped, and so is what ``exclude`` matches (see
    ``excluded``); symlinked folders are not followed (no loops). A file named on its own is
    always taken. Symlinked files are followed; with ``confine`` (the API's ingest roots) a
    file whose resolved path is outside every one of them is refused, and so is a given path
    that resolves outside them (``PermissionDeniedError``). The check runs here, when the
    files are walked, so a link made after a request was accepted is caught too.
    """
    wanted = {e.lower() for e in extensions}
    allowed = None if confine is None else [Path(c).expanduser().resolve() for c in confine]
    found = Scan([], [], {}, {}, [])
    for given in paths:
        path = Path(given).expanduser()
        if not path.exists() and not path.is_symlink():
            root = source_of(path)
            found.roots.append(root)
            found.seen[root] = 0
            found.missing[root] = Path(given)
            continue
        if allowed is not None and not _inside(path, allowed):
            raise PermissionDeniedError(f"{given} is outside the allowed ingest roots")
        if path.is_dir():
            root = str(path.resolve())
            walked = [p for p in _walk(Path(root), exclude) if p.suffix.lower() in wanted]
            for p in walked:
                if allowed is None or _inside(p, allowed):
                    found.files.append(ScannedFile(p, source_of(p), explicit=False))
                else:
                    found.refused.append(FileError(str(p), OUTSIDE_ROOTS))
        else:
            # A named file is always attempted: an unsupported type becomes a clear error.
            root = source_of(path)
            found.files.append(ScannedFile(path, root, explicit=True))
            walked = [path]
        found.roots.append(root)
        found.seen[root] = found.seen.get(root, 0) + len(walked)
    unique = {f.source: f for f in found.files}
    found.files = [unique[s] for s in sorted(unique)]
    return found


def _inside(path: Path, allowed: Sequence[Path]) -> bool:
    """Whether ``path``, with every symlink resolved, is inside one of ``allowed``."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: it reaches no file anywhere
        return True
    return any(real.is_relative_to(root) for root in allowed)


def _walk(root: Path, exclude: Sequence[str]) -> Iterator[Path]:
    for folder, dirs, names in os.walk(root, followlinks=False):
        here = PurePosixPath(Path(folder).relative_to(root).as_posix())
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and not excluded(here / d, exclude)
        )
        for name in sorted(names):
            if not name.startswith(".") and not excluded(here / name, exclude):
                yield Path(folder) / name


def excluded(relative: PurePosixPath, patterns: Sequence[str]) -> bool:
    """Whether a path, relative to the folder being synced, matches an exclude pattern.

    Shell-style patterns, case-sensitive, as in .gitignore: one without a slash matches a
    file or folder name at any depth (``_sources``, ``*.log``); one with a slash matches the
    whole relative path (``drafts/*.md``, ``build/html``). A matched folder is not walked.
    """
    for pattern in patterns:
        pattern = pattern.strip("/")
        if "/" in pattern:
            if fnmatch.fnmatchcase(relative.as_posix(), pattern):
                return True
        elif any(fnmatch.fnmatchcase(part, pattern) for part in relative.parts):
            return True
    return False


def under(source: str, root: str) -> bool:
    """Whether ``source`` is ``root`` itself or a path inside it."""
    return source == root or source.startswith(root.rstrip("/") + "/")


@dataclass(frozen=True)
class Change:
    """A file to (re)ingest: ``previous`` is its stored record when it replaces one."""

    file: ScannedFile
    size: int
    mtime_ns: int
    sha256: str
    previous: FileRecord | None = None


@dataclass(frozen=True)
class Move:
    """Same content at a new path: re-pointed without re-embedding."""

    old: FileRecord
    new: Change


@dataclass
class Plan:
    """What a sync will do, file by file.

    ``empty`` when no file is added, replaced, deleted or moved; ``touched`` files only get
    their new mtime recorded.
    """

    add: list[Change] = field(default_factory=list)
    replace: list[Change] = field(default_factory=list)
    delete: list[FileRecord] = field(default_factory=list)
    move: list[Move] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    touched: list[FileRecord] = field(default_factory=list)  # new mtime, same content
    failed: list[FileError] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.add or self.replace or self.delete or self.move)

    def lines(self) -> list[str]:
        """The plan as a person reads it: one action per line. A file replaced with the
        same content is rebuilt because the settings that shaped its chunks changed (an
        upgraded loader, another chunk size): its line says so."""
        return (
            [f"add      {c.file.source}" for c in self.add]
            + [f"replace  {c.file.source}{_rebuilt(c)}" for c in self.replace]
            + [f"delete   {r.source}" for r in self.delete]
            + [f"move     {m.old.source} -> {m.new.file.source}" for m in self.move]
            + [f"fail     {f.path}: {f.reason}" for f in self.failed]
        )


def _rebuilt(change: Change) -> str:
    same = change.previous is not None and change.previous.sha256 == change.sha256
    return " (same content, stored under older settings)" if same else ""


def stored_under(records: Iterable[str], root: str) -> int:
    """How many of the stored sources are ``root`` or inside it."""
    return sum(1 for source in records if under(source, root))


def emptied_message(folder: Path, what: str, stored: int) -> str:
    """The error for a folder that lost every file while ``stored`` documents from it remain."""
    documents = (
        "1 document ingested from it is"
        if stored == 1
        else f"{stored} documents ingested from it are"
    )
    return (
        f"{folder}: {what}, but {documents} stored; nothing was "
        "deleted (an unmounted or mistyped folder looks like this). To delete them, sync it "
        'with `rag ingest --allow-empty` (API: "allow_empty": true).'
    )


def check_emptied(
    missing: Mapping[str, Path], records: Iterable[str], *, allow_empty: bool
) -> None:
    """Refuse given paths that do not exist: ``missing`` maps a path's root (as ``scan``
    names it) to the path as given. A path with stored documents passes with ``allow_empty``
    (a sync then deletes them); one with none never does."""
    stored_sources = list(records)
    for root, given in missing.items():
        stored = stored_under(stored_sources, root)
        if not stored:
            raise InvalidInputError(f"{given}: no such file or folder", field="paths")
        if not allow_empty:
            raise InvalidInputError(
                emptied_message(given, "no such file or folder", stored), field="paths"
            )


def plan_sync(
    paths: Sequence[Path],
    records: dict[str, FileRecord],
    *,
    signature: str,
    extensions: Iterable[str],
    max_file_bytes: int,
    exclude: Sequence[str] = (),
    confine: Sequence[Path] | None = None,
    allow_empty: bool = False,
) -> Plan:
    """Compare the files under ``paths`` with the stored records of that part of the collection.

    Stored files under a given folder that are no longer there are deleted; a file whose content
    is unchanged is skipped by size and mtime without reading it; a new file with the content of
    a deleted one (same hash, same settings) is a move. Stored files that ``exclude`` now
    matches count as gone, so they are deleted too.

    A given path that is missing, or a folder with no supported file left, while documents
    from it are stored, is an ``InvalidInputError`` naming it (an unmounted or mistyped
    folder must not empty the collection); ``allow_empty`` deletes those documents instead.
    A folder with only some of its files gone is an ordinary sync. ``confine``: see ``scan``;
    refused files are reported as failed and, if stored, deleted.
    """
    found = scan(paths, extensions, exclude, confine=confine)
    files, roots = found.files, found.roots
    check_emptied(found.missing, records, allow_empty=allow_empty)
    for root, seen in sorted(found.seen.items()):
        stored = 0 if seen or allow_empty else stored_under(records, root)
        if stored:
            raise InvalidInputError(
                emptied_message(Path(root), "no supported documents in it now", stored),
                field="paths",
            )
    owned = [s for s in records if any(under(s, root) for root in roots)]
    if not files and not owned and not found.refused:
        shown = ", ".join(str(p) for p in paths)
        skipped = f"; excluded: {', '.join(exclude)}" if exclude else ""
        raise InvalidInputError(
            f"no supported documents found in {shown} "
            f"(supported: {', '.join(sorted(extensions))}{skipped})",
            field="paths",
        )
    plan = Plan(failed=list(found.refused))
    for scanned in files:
        previous = records.get(scanned.source)
        try:
            stat = scanned.path.stat()
            if stat.st_size > max_file_bytes:
                raise OSError(
                    f"file is {stat.st_size} bytes, over the limit of {max_file_bytes} "
                    "(RAG_MAX_FILE_BYTES)"
                )
            if (
                previous is not None
                and previous.signature == signature
                and (previous.size, previous.mtime_ns) == (stat.st_size, stat.st_mtime_ns)
            ):
                plan.unchanged.append(scanned.source)
                continue
            digest = file_sha256(scanned.path)
        except OSError as exc:  # vanished, unreadable, symlink loop, too big
            plan.failed.append(FileError(str(scanned.path), exc.strerror or str(exc)))
            continue
        change = Change(scanned, stat.st_size, stat.st_mtime_ns, digest, previous)
        if previous is None:
            plan.add.append(change)
        elif (previous.sha256, previous.signature) == (digest, signature):
            plan.touched.append(
                FileRecord(
                    scanned.source,
                    stat.st_size,
                    stat.st_mtime_ns,
                    digest,
                    previous.chunk_ids,
                    signature,
                )
            )
            plan.unchanged.append(scanned.source)
        else:
            plan.replace.append(change)
    present = {f.source for f in files}
    gone = {s: records[s] for s in owned if s not in present}
    by_hash = {r.sha256: r for r in gone.values() if r.signature == signature and r.chunk_ids}
    for change in list(plan.add):
        old = by_hash.pop(change.sha256, None)
        if old is not None:
            plan.add.remove(change)
            plan.move.append(Move(old, change))
            del gone[old.source]
    plan.delete = sorted(gone.values(), key=lambda r: r.source)
    return plan
