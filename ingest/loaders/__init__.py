"""Turn one file on disk into a ``Document``: text split into sections with heading paths or pages.

``load_document`` is the only entry point. It picks the format loader by file extension (the
table below), reads the file, and guarantees what every caller relies on: a file-level problem
is always a ``LoaderError`` (``UnsupportedFileType`` for an extension no loader handles) whose
reason says what is wrong; sections are never blank; the title is never empty (the file's stem
when the format gives none) and is a single line of bounded length.

One module per format: ``text`` (.txt), ``markdown`` (.md, .markdown), ``rst`` (.rst), ``html``
(.html, .htm), ``pdf`` (.pdf), ``docx`` (.docx), ``pptx`` (.pptx), ``xlsx`` (.xlsx), ``csv``
(.csv), ``epub`` (.epub), ``odt`` (.odt) and ``eml`` (.eml); ``base`` holds what they share,
``sheet`` the rows-to-sections of the two table formats. Parsing libraries are imported on
first use, not at import time.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

from ingest.loaders.base import FormatLoader
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
from rag.types import Document

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
_LOADERS[".eml"] = partial(load_eml, attachment_loaders=dict(_LOADERS))

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(_LOADERS)
# Bump whenever the text or sections produced for a file change, so stored chunks get rebuilt.
LOADER_VERSION: str = "2"

_MAX_TITLE_CHARS = 200


def load_document(path: Path, *, source: str | None = None) -> Document:
    """Load one file into a ``Document``; raises ``LoaderError`` with the reason on bad input.

    ``source`` names the document in the store; it defaults to the file's resolved path.
    """
    path = Path(path)
    ext = path.suffix.lower()
    loader = _LOADERS.get(ext)
    if loader is None:
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
        title, sections = loader(path, data)
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
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise LoaderError(str(path), "no extractable text")
    title = _clean_title(title) or path.stem
    logger.debug("loaded %s: %d sections, title %r", path, len(sections), title)
    return Document(source=source, title=title, sections=tuple(sections))


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
