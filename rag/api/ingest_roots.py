"""Which server-side paths the API may ingest: those under RAG_INGEST_ROOTS."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rag.errors import InvalidInputError, PermissionDeniedError


def resolve_under_roots(path: str, roots: Sequence[Path], *, must_exist: bool = True) -> Path:
    """A server-side folder the API may ingest: inside a configured root, after resolving
    symlinks and '..', so no request reaches outside them. Files found in it later are
    checked again as they are walked (``ingest.sync.scan``'s ``confine``). A missing path
    passes only when not ``must_exist`` (a deletion the caller asked for)."""
    if not roots:
        raise PermissionDeniedError(
            "ingesting server folders through the API is disabled (set RAG_INGEST_ROOTS)"
        )
    try:
        resolved = Path(path).expanduser().resolve()
    except (RuntimeError, ValueError, OSError) as exc:  # "~nobody", a NUL, a loop
        raise InvalidInputError(f"path {path!r} cannot be resolved: {exc}", field="path") from None
    for root in roots:
        if resolved.is_relative_to(root.expanduser().resolve()):
            if must_exist and not resolved.exists():
                raise InvalidInputError(f"{path}: no such file or folder", field="path")
            return resolved
    raise PermissionDeniedError(f"{path} is outside the allowed ingest roots")
