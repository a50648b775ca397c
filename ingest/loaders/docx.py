"""DOCX (``.docx``): body paragraphs and tables in reading order, under heading paths.

python-docx reads the package. Paragraphs styled ``Heading N`` open a section at level N; a
table becomes one block with a line per row and `` | `` between cells. The title is the core
properties' title, else the first ``Title``-styled paragraph, else the first heading when all
others are under it (``base.heading_title``).
Password-protected files and legacy ``.doc`` files (both OLE containers) are refused with the
reason, and so is a package over the ZIP limits of ``base.check_zip_limits`` (checked before
python-docx reads it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.loaders.base import TitledSections, check_zip_limits, enter_heading, heading_title
from rag.errors import LoaderError
from rag.types import Section

if TYPE_CHECKING:
    from docx.document import Document as DocxDocument
    from docx.table import Table as DocxTable

_DOCX_HEADING = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def load_docx(path: Path, data: bytes) -> TitledSections:
    """Title and sections of a DOCX file."""
    import io
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    if data.startswith(_OLE_MAGIC):
        # Password-protected DOCX files are wrapped in an OLE container, as are legacy .doc files.
        raise LoaderError(str(path), "encrypted DOCX or legacy .doc file (OLE container)")
    if not data.startswith(b"PK"):
        raise LoaderError(str(path), "corrupt DOCX: not a ZIP package")
    check_zip_limits(path, data, "DOCX")
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoaderError(str(path), f"corrupt DOCX: {exc}") from None

    title = ""
    try:
        title = (document.core_properties.title or "").strip()
    except (ValueError, KeyError):  # malformed core.xml must not sink the body text
        title = ""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    path_: tuple[str, ...] = ()
    blocks: list[str] = []
    style_title = ""

    def close_section() -> None:
        body = "\n\n".join(blocks).strip()
        if body:
            sections.append(Section(text=body, heading_path=path_))
        blocks.clear()

    for item in _docx_blocks(document):
        if isinstance(item, str):
            blocks.append(item)
            continue
        style, text = item
        m = _DOCX_HEADING.match(style)
        if m and text:
            level = int(m.group(1))
            close_section()
            path_ = enter_heading(stack, level, text)
        elif style.lower() == "title" and text and not style_title:
            style_title = text
        elif text:
            blocks.append(text)
    close_section()
    return title or style_title or heading_title(sections), sections


def _docx_blocks(document: DocxDocument) -> Iterator[str | tuple[str, str]]:
    """Body in reading order: (style name, text) for paragraphs, plain text for tables."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            style = block.style.name if block.style is not None else ""
            yield (style or "", block.text.strip())
        elif isinstance(block, Table):
            rows = list(_docx_table_rows(block))
            if rows:
                yield "\n".join(rows)


def _docx_table_rows(table: DocxTable) -> Iterator[str]:
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            # Merged cells come back once per grid column; report each underlying cell once.
            key = id(cell._tc)
            if key in seen:
                continue
            seen.add(key)
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            yield " | ".join(cells)
