"""Local-first retrieval-augmented generation: answers from your own documents, with citations.

The Python API (docs/python-api.md)::

    import rag

    with rag.open(data_dir="data") as docs:
        docs.ingest(["samples"])
        answer = docs.ask("What was removed in Skylark 4.2?")

Its names are exported lazily: ``import rag`` imports nothing else, and a name's module is
imported on first access (``rag.open`` loads no model either: models load on first use).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "open": "rag.library",
    "Documents": "rag.library",
    "AnswerStream": "rag.library",
    "AsyncAnswerStream": "rag.library",
    "DocumentsClosedError": "rag.library",
    "Settings": "rag.config",
    "Answer": "rag.types",
    "Citation": "rag.types",
    "Hit": "rag.types",
    "Chunk": "rag.types",
    "IngestReport": "ingest.pipeline",
    "RagError": "rag.errors",
    "ConfigError": "rag.errors",
    "InvalidInputError": "rag.errors",
    "NotFoundError": "rag.errors",
    "CollectionNotFoundError": "rag.errors",
    "StoreError": "rag.errors",
    "StoreLockedError": "rag.errors",
    "CollectionMismatchError": "rag.errors",
    "ModelError": "rag.errors",
}

__all__ = [
    "Answer",
    "AnswerStream",
    "AsyncAnswerStream",
    "Chunk",
    "Citation",
    "CollectionMismatchError",
    "CollectionNotFoundError",
    "ConfigError",
    "Documents",
    "DocumentsClosedError",
    "Hit",
    "IngestReport",
    "InvalidInputError",
    "ModelError",
    "NotFoundError",
    "RagError",
    "Settings",
    "StoreError",
    "StoreLockedError",
    "__version__",
    "open",
]

if TYPE_CHECKING:
    from ingest.pipeline import IngestReport
    from rag.config import Settings
    from rag.errors import (
        CollectionMismatchError,
        CollectionNotFoundError,
        ConfigError,
        InvalidInputError,
        ModelError,
        NotFoundError,
        RagError,
        StoreError,
        StoreLockedError,
    )
    from rag.library import (
        AnswerStream,
        AsyncAnswerStream,
        Documents,
        DocumentsClosedError,
        open,
    )
    from rag.types import Answer, Chunk, Citation, Hit


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
