"""Uploaded files: the name each is stored under, and writing them without losing any.

A stored name keeps the uploaded name's letters, in any script, and is safe on the file
system: no folders, no leading dots or spaces, no control or bidirectional-override
characters, none of ``<>:"|?*~``, at most 255 bytes in UTF-8. Uploading a name again stores
the file under the same name, so the new version replaces the document, as a sync does. Two
different names never share a stored name: a name that cleaning or the length cap changed
also gets ``~`` and a hash of the uploaded name before its extension, and ``~`` is never
left in a name that cleaning kept as it was.

Every file of a request is written to a temporary file of its own in the target folder, and
only when all of them were received whole are they moved into place, each in one atomic
rename: concurrent uploads share no temporary file, and a refused request stores nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ingest.loaders import SUPPORTED_EXTENSIONS
from rag.errors import InvalidInputError, PayloadTooLargeError

MAX_NAME_BYTES = 255
"""The longest file name ext4, XFS, btrfs and APFS store, in bytes."""
_HASH_CHARS = 10
_FOLDERS = re.compile(r"[/\\]")
_RESERVED = re.compile(r'[<>:"|?*~]')
_EDGES = re.compile(r"^[\s.]+|[\s.]+$")
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Upload:
    """One file of a request: the name the client sent and its content."""

    filename: str
    file: BinaryIO


def _kept(char: str) -> bool:
    category = unicodedata.category(char)
    return category not in ("Cc", "Cs") and char not in _BIDI_CONTROLS


def _fit(stem: str, tail: str) -> str:
    """``stem + tail``, the stem shortened (whole characters) to fit MAX_NAME_BYTES."""
    room = MAX_NAME_BYTES - len(tail.encode())
    return stem.encode()[:room].decode(errors="ignore").rstrip() + tail


def stored_name(filename: str) -> str:
    """The name an uploaded file is stored under; InvalidInputError (field ``files``) when
    nothing usable is left of it or its type is not read."""
    uploaded = unicodedata.normalize("NFC", _FOLDERS.split(filename)[-1])
    cleaned = "".join(c for c in uploaded if _kept(c))
    cleaned = _EDGES.sub("", _RESERVED.sub("_", cleaned))
    if not cleaned:
        raise InvalidInputError(f"invalid file name {filename!r}", field="files")
    suffix = Path(cleaned).suffix
    if suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise InvalidInputError(
            f"{cleaned}: unsupported file type {suffix.lower() or '(none)'} "
            f"(supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))})",
            field="files",
        )
    if cleaned == uploaded and len(cleaned.encode()) <= MAX_NAME_BYTES:
        return cleaned
    tag = hashlib.sha256(uploaded.encode(errors="backslashreplace")).hexdigest()[:_HASH_CHARS]
    return _fit(cleaned.removesuffix(suffix), f"~{tag}{suffix}")


def _receive(upload: Upload, name: str, folder: Path, limit: int) -> Path:
    """The upload's content in a new temporary file of ``folder``; 413 past ``limit`` bytes."""
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".partial")
    path = Path(temporary)
    try:
        written = 0
        with os.fdopen(handle, "wb") as out:
            while block := upload.file.read(_BLOCK):
                written += len(block)
                if written > limit:
                    raise PayloadTooLargeError(
                        f"{name} is over the upload limit of {limit} bytes (RAG_MAX_UPLOAD_BYTES)"
                    )
                out.write(block)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def save_uploads(uploads: Sequence[Upload], folder: Path, *, limit: int) -> list[Path]:
    """Store every upload in ``folder`` under its stored name, or none of them: the paths
    stored, in the request's order."""
    if not uploads:
        raise InvalidInputError("no files in the upload", field="files")
    names = [stored_name(u.filename) for u in uploads]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise InvalidInputError(
                f"{uploads[i].filename!r} is stored as {name!r}, as another file of this "
                "upload is: send each file once",
                field="files",
            )
    folder.mkdir(parents=True, exist_ok=True)
    received: list[Path] = []
    try:
        for upload, name in zip(uploads, names, strict=True):
            received.append(_receive(upload, name, folder, limit))
    except BaseException:
        for path in received:
            path.unlink(missing_ok=True)
        raise
    targets = [folder / name for name in names]
    for temporary, target in zip(received, targets, strict=True):
        temporary.replace(target)
    return targets
