"""Our exception types. The core raises these; the CLI and the API translate them at the edge."""

from __future__ import annotations


class RagError(Exception):
    """Base class for every error this project raises on purpose."""


class ConfigError(RagError):
    """A setting is missing or invalid."""


class InvalidInputError(RagError):
    """The caller's input is unusable (empty question, missing path, ...)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PermissionDeniedError(RagError):
    """The request is understood but not allowed (e.g. a path outside the ingest roots)."""


class PayloadTooLargeError(InvalidInputError):
    """An upload is over the size limit."""


class LoaderError(RagError):
    """One file could not be turned into text. Carries the path so the user knows which."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class UnsupportedFileType(LoaderError):
    """The file's extension has no loader."""


class NotFoundError(RagError):
    """A named thing (collection, document, job) does not exist."""


class DocumentNotFoundError(NotFoundError):
    """No document with that source in the collection."""


class JobNotFoundError(NotFoundError):
    """No job with that id."""


class NotReadyError(RagError):
    """What was asked for is not computed yet (a collection's map); asking again once it is
    built finds it."""


class StoreError(RagError):
    """The vector store failed or refused an operation."""


class StoreLockedError(StoreError):
    """Another process holds the embedded store open."""


class CollectionMismatchError(StoreError):
    """A collection was built with another embedding model or dimension."""


class CollectionNotFoundError(StoreError, NotFoundError):
    """The named collection does not exist."""


class ModelError(RagError):
    """A model could not be found or loaded."""
