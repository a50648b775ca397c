"""Display names of a collection's sources (rag.display), kept while its ingestion state is
unchanged.

The folder a collection's files share is read from its ingestion state, which an ingestion
changes; the names are built again when the state file (or its write-ahead log) changed.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ingest.state import SyncState
from rag.catalog import state_path
from rag.config import Settings
from rag.display import SourceNames, source_names

_Signature = tuple[tuple[int, int] | None, ...]
_lock = threading.Lock()
_cache: dict[tuple[Path, str, tuple[Path, ...]], tuple[_Signature, SourceNames]] = {}
_MAX_CACHED = 64


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def names_for(settings: Settings, collection: str) -> SourceNames:
    """How the collection's sources are shown to people."""
    state = state_path(settings, collection)
    signature = (_stat(state), _stat(Path(f"{state}-wal")))
    key = (settings.data_dir.resolve(), collection, tuple(settings.ingest_roots))
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
    names = source_names(settings, collection, list(SyncState.read_records(state)))
    with _lock:
        if len(_cache) >= _MAX_CACHED:
            _cache.pop(next(iter(_cache)))
        _cache[key] = (signature, names)
    return names
