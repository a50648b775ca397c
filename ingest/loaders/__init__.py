"""Turn one file on disk into a ``Document``: text split into sections with heading paths or pages.

``load_document`` is the only entry point. It picks the format loader by file extension (the
table below), reads the file, and guarantees what every caller relies on: a file-level problem
is always a ``LoaderError`` (``UnsupportedFileType`` for an extension no loader handles) whose
reason says what is wrong; sections are never blank; the title is never empty (the file's stem
when the format gives none) and is a single line of bounded length.

An e-mail carries other files: ``load_document`` returns its attachments in supported formats
as documents of their own (``Document.attachments``), each under the source
``MESSAGE_SOURCE/NAME``, so a filter on the message's path covers them too.

One module per format: ``text`` (.txt), ``markdown`` (.md, .markdown), ``rst`` (.rst), ``html``
(.html, .htm), ``pdf`` (.pdf), ``docx`` (.docx), ``pptx`` (.pptx), ``xlsx`` (.xlsx), ``csv``
(.csv), ``epub`` (.epub), ``odt`` (.odt) and ``eml`` (.eml); ``base`` holds what they share,
``sheet`` the rows-to-sections of the two table formats. Parsing libraries are imported on
first use, not at import time.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from pathlib import Path, PurePosixPath

from ingest.loaders.base import Container, ContainerLoader, FormatLoader
from ingest.loaders.csv import load_csv
from ingest.loaders.docx import load_docx
from ingest.loaders.eml import load_eml
from ingest.loaders.epub import load_epub
from ingest.loaders.html import load_html
from ingest.loaders.markdown import load_markdown
from ingest.loaders.odt import load_odt
from ingest.loaders.pdf import load_pdf
from ingest.loaders.pptx import load_pptx
from ingest.loaders.rst import load_rst
from ingest.loaders.text import load_text
from ingest.loaders.xlsx import load_xlsx
from rag.errors import LoaderError, UnsupportedFileType
from rag.types import Document, Section

__all__ = ["LOADER_VERSION", "SUPPORTED_EXTENSIONS", "load_document"]

logger = logging.getLogger(__name__)

_LOADERS: dict[str, FormatLoader] = {
    ".txt": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".rst": load_rst,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".pptx": load_pptx,
    ".xlsx": load_xlsx,
    ".csv": load_csv,
    ".epub": load_epub,
    ".odt": load_odt,
}
# An e-mail's attachments are read by the loaders above (an attached e-mail is not opened).
_CONTAINER_LOADERS: dict[str, ContainerLoader] = {
    ".eml": partial(load_eml, attachment_loaders=dict(_LOADERS)),
}

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(_LOADERS) | frozenset(_CONTAINER_LOADERS)
# Bump whenever the text or sections produced for a file change, so stored chunks get rebuilt.
LOADER_VERSION: str = "10"

_MAX_TITLE_CHARS = 200


def load_document(path: Path, *, source: str | None = None) -> Document:
    """Load one file into a ``Document``; raises ``LoaderError`` with the reason on bad input.

    ``source`` names the document in the store; it defaults to the file's resolved path.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        reason = (
            f"unsupported file type {ext!r}" if ext else "no file extension"
        ) + f" (supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))})"
        raise UnsupportedFileType(str(path), reason)
    data = _read_bytes(path)
    if not data:
        raise LoaderError(str(path), "empty file (0 bytes)")
    if source is None:
        source = str(path.resolve())
    try:
        loaded = _parse(ext, path, data)
    except LoaderError:
        raise
    except MemoryError:  # a process-level condition, not something wrong with this file
        raise
    except Exception as exc:
        # Safety net: parsers raise a zoo of exception types on malformed input (zip, XML, struct,
        # recursion depth...). Callers must only ever see LoaderError for a file-level problem.
        logger.debug("loader for %s failed", path, exc_info=True)
        raise LoaderError(
            str(path), f"could not parse {ext[1:].upper()} file: {type(exc).__name__}: {exc}"
        ) from exc
    metadata = tuple(loaded.metadata.items())
    attachments = tuple(
        document
        for name, (title, sections) in loaded.attached
        if (document := _document(f"{source}/{name}", title, sections, PurePosixPath(name).stem))
        is not None
    )
    document = _document(source, loaded.title, loaded.sections, path.stem)
    if document is None and attachments:  # a message that is only its attachments
        document = _document(source, loaded.title, [Section(loaded.title or path.stem)], path.stem)
    if document is None:
        raise LoaderError(str(path), "no extractable text")
    attachments = tuple(replace(a, metadata=metadata) for a in attachments)
    logger.debug(
        "loaded %s: %d sections, %d attachments, title %r",
        path,
        len(document.sections),
        len(attachments),
        document.title,
    )
    return replace(document, metadata=metadata, attachments=attachments)


def _parse(ext: str, path: Path, data: bytes) -> Container:
    if ext in _CONTAINER_LOADERS:
        return _CONTAINER_LOADERS[ext](path, data)
    title, sections = _LOADERS[ext](path, data)
    return Container(title, sections)


def _document(source: str, title: str, sections: list[Section], stem: str) -> Document | None:
    """The document, or None when it has no text: blank sections dropped, the title one
    bounded line (``stem`` when the format gives none)."""
    kept = tuple(s for s in sections if s.text.strip())
    if not kept:
        return None
    return Document(source=source, title=_clean_title(title) or stem, sections=kept)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise LoaderError(str(path), "file not found") from None
    except IsADirectoryError:
        raise LoaderError(str(path), "is a directory, not a file") from None
    except PermissionError:
        raise LoaderError(str(path), "permission denied") from None
    except OSError as exc:
        raise LoaderError(str(path), f"cannot read file: {exc.strerror or exc}") from exc


def _clean_title(title: str | None) -> str:
    if not title:
        return ""
    title = " ".join(title.split())
    return title[:_MAX_TITLE_CHARS].rstrip()
