"""How a source is named to people: its path relative to the folder it was ingested from.

A chunk records its file's absolute path (``source``), which names the server's folders and is
long. Answers, chat footers, citation chips and the CLI show instead the path relative to the
folder the file came from: the collection's upload folder (so an uploaded file shows its name),
a configured ingest root, or the folder that holds all of the collection's other files. A path
under none of them shows its file name alone. The full path stays in the API's ``source``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePath
from typing import Any

from rag.config import Settings
from rag.types import Hit


class SourceNames:
    """Names sources relative to the deepest of ``roots`` that holds them."""

    def __init__(self, roots: Iterable[str | Path] = ()) -> None:
        cleaned = {str(r).rstrip("/") for r in roots if str(r).strip() and str(r) != "/"}
        # Deepest first: a file in an upload folder inside an ingest root is named by the former.
        self._roots = sorted(cleaned, key=len, reverse=True)

    @property
    def roots(self) -> list[str]:
        return list(self._roots)

    def __call__(self, source: str) -> str:
        for root in self._roots:
            if source.startswith(root + "/"):
                return source[len(root) + 1 :]
        return PurePath(source).name or source


FILE_NAMES = SourceNames()
"""Names every source by its file name alone."""


def common_folder(sources: Iterable[str]) -> str | None:
    """The deepest folder holding every one of ``sources`` (absolute paths), or None when
    they share none but the file system's root (or there are none)."""
    folders = {str(PurePath(s).parent) for s in sources if s.startswith("/")}
    if not folders:
        return None
    common = os.path.commonpath(sorted(folders))
    return None if common in ("", "/") else common


def upload_folder(settings: Settings, collection: str) -> Path:
    """Where the API stores a collection's uploaded files."""
    return settings.data_dir / "uploads" / collection


def source_names(settings: Settings, collection: str, ingested: Sequence[str] = ()) -> SourceNames:
    """Names for a collection's sources. ``ingested``: the sources its ingestion state records
    (the folder they share is taken as the one they were ingested from); uploads are left out
    of that, as they live apart."""
    uploads = upload_folder(settings, collection).resolve()
    prefix = f"{uploads}/"
    folder = common_folder(s for s in ingested if not s.startswith(prefix))
    roots: list[str | Path] = [uploads, *(r.expanduser().resolve() for r in settings.ingest_roots)]
    if folder is not None:
        roots.append(folder)
    return SourceNames(roots)


def hit_json(hit: Hit, names: Callable[[str], str] = FILE_NAMES) -> dict[str, Any]:
    """A search hit as JSON, as the CLI prints it and ``/v1/search`` returns it; ``names``:
    how its file is shown (default: its file name)."""
    chunk = hit.chunk
    return {
        "score": hit.score,
        "similarity": hit.similarity,
        "chunk_id": chunk.id,
        "source": chunk.source,
        "display_source": names(chunk.source),
        "title": chunk.title,
        "heading_path": list(chunk.heading_path),
        "page": chunk.page,
        "start": chunk.start,
        "end": chunk.end,
        "text": chunk.text,
        "metadata": dict(chunk.metadata),
    }
