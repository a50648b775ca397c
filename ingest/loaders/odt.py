"""OpenDocument text (``.odt``): paragraphs, lists and tables in reading order, under heading
paths from the document's outline levels.

The package is read with ``zipfile`` and its XML parts with defusedxml (``base.parse_xml``),
rather than odfpy: a few dozen lines over ``content.xml`` need no dependency beyond the XML
guard every package format shares, and refuse entity bombs. A ``text:h`` opens a section at
its outline level; a table becomes one block with a line per row and `` | `` between cells;
footnote bodies follow their paragraph; generated indexes (a table of contents repeats the
headings), tracked deletions and comments are left out. The title is ``dc:title`` in
``meta.xml``, else the first ``Title``-styled paragraph, else the first heading when all
others are under it (``base.heading_title``).

Refused with the reason: a package over the ZIP limits (``base.check_zip_limits``), an
OpenDocument file of another kind (its ``mimetype``), a password-protected document (its
manifest lists encryption data), and a package without ``content.xml``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.loaders.base import (
    TitledSections,
    check_mimetype,
    check_zip_package,
    enter_heading,
    heading_title,
    parse_xml,
)
from rag.errors import LoaderError
from rag.types import Section

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

_ODT_MIMETYPES = frozenset(
    {"application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.text-template"}
)
_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_DRAW = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}"
_MANIFEST = "{urn:oasis:names:tc:opendocument:xmlns:manifest:1.0}"
_DC = "{http://purl.org/dc/elements/1.1/}"

_H, _P = _TEXT + "h", _TEXT + "p"
_TABLE_EL, _ROW, _CELL = _TABLE + "table", _TABLE + "table-row", _TABLE + "table-cell"
_NOTE, _NOTE_BODY = _TEXT + "note", _TEXT + "note-body"
_FRAME = _DRAW + "frame"
_ROW_GROUPS = frozenset(
    {_TABLE + "table-header-rows", _TABLE + "table-rows", _TABLE + "table-row-group"}
)
_STYLE = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}"
# Never text of the document: generated indexes, deleted text, comments, declarations.
_SKIP = frozenset(
    {
        _TEXT + "table-of-content",
        _TEXT + "alphabetical-index",
        _TEXT + "illustration-index",
        _TEXT + "table-index",
        _TEXT + "object-index",
        _TEXT + "user-index",
        _TEXT + "bibliography",
        _TEXT + "tracked-changes",
        _TEXT + "sequence-decls",
        _TEXT + "variable-decls",
        _TEXT + "user-field-decls",
        _TEXT + "note-citation",
        _OFFICE + "annotation",
        _OFFICE + "forms",
        _TABLE + "covered-table-cell",
    }
)
# Inline elements that stand for whitespace.
_SPACES = {_TEXT + "s": " ", _TEXT + "tab": "\t", _TEXT + "line-break": "\n"}
_MAX_LEVEL = 10


def load_odt(path: Path, data: bytes) -> TitledSections:
    """Title and sections of an ODT document."""
    import io
    import zipfile

    check_zip_package(path, data, "ODT")
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        names = set(package.namelist())
        check_mimetype(path, package, _ODT_MIMETYPES, "an OpenDocument text file")
        if "META-INF/manifest.xml" in names:
            manifest = parse_xml(path, package.read("META-INF/manifest.xml"), "ODT", "manifest")
            if manifest.find(f".//{_MANIFEST}encryption-data") is not None:
                raise LoaderError(str(path), "encrypted ODT (password protected)")
        if "content.xml" not in names:
            raise LoaderError(str(path), "corrupt ODT: no content.xml")
        content = parse_xml(path, package.read("content.xml"), "ODT", "content.xml")
        meta_title = ""
        if "meta.xml" in names:
            meta = parse_xml(path, package.read("meta.xml"), "ODT", "meta.xml")
            meta_title = " ".join((meta.findtext(f".//{_DC}title") or "").split())

    # Automatic styles ("P1") name the paragraph style they modify: a Title paragraph may be
    # written with one.
    parents = {
        style.get(_STYLE + "name", ""): style.get(_STYLE + "parent-style-name", "")
        for style in content.iterfind(f"{_OFFICE}automatic-styles/{_STYLE}style")
    }
    body = content.find(f"{_OFFICE}body/{_OFFICE}text")
    if body is None:
        raise LoaderError(str(path), "corrupt ODT: no text body (another OpenDocument kind?)")
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    heading_path: tuple[str, ...] = ()
    blocks: list[str] = []
    style_title = ""

    def close_section() -> None:
        text = "\n\n".join(blocks).strip()
        if text:
            sections.append(Section(text=text, heading_path=heading_path))
        blocks.clear()

    for level, style, text in _blocks(body):
        if level:
            close_section()
            heading_path = enter_heading(stack, level, text)
        elif "Title" in (style, parents.get(style)) and not style_title:
            style_title = text
        else:
            blocks.append(text)
    close_section()
    return meta_title or style_title or heading_title(sections), sections


def _blocks(container: Element) -> Iterator[tuple[int, str, str]]:
    """(heading level or 0, paragraph style, text) of every non-blank block, in reading order."""
    for child in container:
        tag = child.tag
        if tag in _SKIP:
            continue
        if tag in (_H, _P):
            pieces: list[str] = []
            nested: list[Element] = []
            _inline(child, pieces, nested)
            text = _clean("".join(pieces), keep_lines=tag == _P)
            if text:
                level = _level(child) if tag == _H else 0
                yield level, child.get(_TEXT + "style-name", ""), text
            for inner in nested:  # frames' text boxes and footnote bodies, after the paragraph
                yield from _blocks(inner)
        elif tag == _TABLE_EL:
            rows = list(_table_rows(child))
            if rows:
                yield 0, "", "\n".join(rows)
        else:  # lists, list items, sections, frames, boxes: containers of blocks
            yield from _blocks(child)


def _inline(element: Element, pieces: list[str], nested: list[Element]) -> None:
    if element.text:
        pieces.append(element.text)
    for child in element:
        tag = child.tag
        if tag in _SPACES:
            # text:s carries a repeat count; spaces are collapsed anyway, so one is enough.
            pieces.append(_SPACES[tag])
        elif tag == _NOTE:
            nested.extend(child.iter(_NOTE_BODY))
        elif tag == _FRAME:
            nested.append(child)
        elif tag not in _SKIP:
            _inline(child, pieces, nested)
        if child.tail:
            pieces.append(child.tail)


def _table_rows(table: Element) -> Iterator[str]:
    for row in _rows(table):
        cells = []
        for cell in row.findall(_CELL):
            texts = (text for _, _, text in _blocks(cell))
            cells.append(" ".join(" ".join(texts).split()))
        if any(cells):
            yield " | ".join(cells)


def _rows(table: Element) -> Iterator[Element]:
    # Rows sit in the table or in header-rows / row-group wrappers; a nested table's rows are
    # its cell's text, not rows of this table.
    for child in table:
        if child.tag == _ROW:
            yield child
        elif child.tag in _ROW_GROUPS:
            yield from _rows(child)


def _level(heading: Element) -> int:
    try:
        level = int(heading.get(_TEXT + "outline-level", "1"))
    except ValueError:
        level = 1
    return min(max(level, 1), _MAX_LEVEL)


def _clean(text: str, *, keep_lines: bool) -> str:
    if not keep_lines:
        return " ".join(text.split())
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)
