"""What several format loaders share: the loader signature, strict text decoding, sections.

A format loader takes the path (for error messages) and the file's bytes, and returns the
title it found (possibly empty) and the sections in reading order. It raises ``LoaderError``
for a problem it can name; ``load_document`` turns anything else into one.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import LoaderError
from rag.types import Section

if TYPE_CHECKING:
    import zipfile
    from xml.etree import ElementTree

TitledSections = tuple[str, list[Section]]
"""A loader's result: the title it found (may be empty) and the sections in reading order."""

FormatLoader = Callable[[Path, bytes], TitledSections]


@dataclass(frozen=True)
class Container:
    """What a loader of a file that carries other files (an e-mail) returns: its own title,
    sections and metadata, and the files inside it by name, each already loaded."""

    title: str
    sections: list[Section]
    metadata: dict[str, str] = field(default_factory=dict)
    attached: list[tuple[str, TitledSections]] = field(default_factory=list)


ContainerLoader = Callable[[Path, bytes], Container]

SNIFF_BYTES = 8192
UTF16_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Share of control bytes (not tab/newline/CR/FF) above which a "text" file is treated as binary.
_MAX_CONTROL_SHARE = 0.10
_CONTROL_BYTES = frozenset(set(range(32)) - {9, 10, 12, 13} | {127})


# Limits on what a ZIP-based format (DOCX, PPTX, XLSX, ODT, EPUB) may unpack to, read from its
# central directory before any parser sees it: a decompression bomb is refused instead of
# filling the memory.
ZIP_MAX_UNCOMPRESSED_BYTES = 512 * 1024 * 1024
ZIP_MAX_ENTRIES = 10_000
ZIP_MAX_RATIO = 200
# Entries smaller than this unpacked are not held to the ratio: tiny parts compress oddly.
ZIP_RATIO_FLOOR_BYTES = 1024 * 1024


def check_zip_limits(path: Path, data: bytes, kind: str) -> None:
    """Refuse a ZIP package (``kind`` names the format in the reason) whose central directory
    declares more than ``ZIP_MAX_ENTRIES`` entries, more than ``ZIP_MAX_UNCOMPRESSED_BYTES``
    unpacked in all, or an entry that unpacks to more than ``ZIP_MAX_RATIO`` times its packed
    size. Python's ``zipfile`` never inflates an entry past its declared size, so the declared
    sizes bound what a parser can unpack. A ``LoaderError`` names the file and the limit."""
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            entries = package.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise LoaderError(str(path), f"corrupt {kind}: {exc}") from None
    if len(entries) > ZIP_MAX_ENTRIES:
        raise LoaderError(
            str(path), f"{kind} package has {len(entries)} entries, over {ZIP_MAX_ENTRIES}"
        )
    total = sum(e.file_size for e in entries)
    if total > ZIP_MAX_UNCOMPRESSED_BYTES:
        raise LoaderError(
            str(path),
            f"{kind} package unpacks to {total} bytes, over the limit of "
            f"{ZIP_MAX_UNCOMPRESSED_BYTES} (a decompression bomb?)",
        )
    for entry in entries:
        if entry.file_size <= ZIP_RATIO_FLOOR_BYTES:
            continue
        ratio = entry.file_size / max(entry.compress_size, 1)
        if ratio > ZIP_MAX_RATIO:
            raise LoaderError(
                str(path),
                f"{kind} part {entry.filename!r} has a compression ratio of {ratio:.0f}, over "
                f"the limit of {ZIP_MAX_RATIO} (a decompression bomb?)",
            )


# Password-protected OOXML files and legacy Office files are OLE compound files, not ZIPs.
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def check_zip_package(path: Path, data: bytes, kind: str, *, ole_reason: str = "") -> None:
    """Refuse what is not a ZIP package of format ``kind`` before a parser reads it: an OLE
    file (``ole_reason``, else corrupt), no ZIP signature, or a package over the ZIP limits."""
    if data.startswith(OLE_MAGIC):
        raise LoaderError(str(path), ole_reason or f"corrupt {kind}: an OLE file, not a ZIP")
    if not data.startswith(b"PK"):
        raise LoaderError(str(path), f"corrupt {kind}: not a ZIP package")
    check_zip_limits(path, data, kind)


def parse_xml(path: Path, xml: bytes, kind: str, part: str) -> ElementTree.Element:
    """One XML part of a package, parsed by defusedxml: entity declarations (billion laughs)
    and external entities are refused with a ``LoaderError`` naming the part. A DOCTYPE alone
    is allowed (EPUB 2 navigation files carry one); expat never fetches its DTD."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root: ElementTree.Element = fromstring(xml)
    except DefusedXmlException as exc:
        raise LoaderError(
            str(path), f"{kind} part {part!r} refused: {type(exc).__name__} (XML entities)"
        ) from None
    except ParseError as exc:
        raise LoaderError(
            str(path), f"corrupt {kind}: {part!r} is not well-formed XML: {exc}"
        ) from None
    return root


def looks_binary(data: bytes) -> bool:
    """A NUL byte or too many control bytes in the first ``SNIFF_BYTES``."""
    head = data[:SNIFF_BYTES]
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b in _CONTROL_BYTES)
    return controls > _MAX_CONTROL_SHARE * len(head)


def decode_utf8_text(path: Path, data: bytes) -> str:
    """Strict UTF-8 decode for the plain-text formats, with the reason spelled out on failure."""
    if data.startswith(UTF16_BOMS):
        # Checked before the NUL-byte test: UTF-16 text is full of NULs but is not "binary".
        raise LoaderError(str(path), "not valid UTF-8 (UTF-16/32 byte order mark; save as UTF-8)")
    if looks_binary(data):
        raise LoaderError(str(path), "binary content under a text extension")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoaderError(
            str(path),
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
        ) from None
    if not text.strip():
        raise LoaderError(str(path), "empty file (whitespace only)")
    # Universal newlines so offsets and line-based parsing do not care where the file came from.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def strip_blank_edges(text: str) -> str:
    """Drop leading/trailing blank lines and trailing spaces but keep first-line indentation."""
    lines = [ln.rstrip() for ln in text.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def enter_heading(stack: list[tuple[int, str]], level: int, text: str) -> tuple[str, ...]:
    """Put a heading of ``level`` on ``stack`` (the open headings, outermost first), closing
    those at its level or deeper; the heading path it opens."""
    while stack and stack[-1][0] >= level:
        stack.pop()
    stack.append((level, text))
    return tuple(t for _, t in stack)


def check_mimetype(
    path: Path, package: zipfile.ZipFile, allowed: Collection[str], what: str
) -> None:
    """Refuse a package whose ``mimetype`` entry (when it has one) is none of ``allowed``."""
    if "mimetype" not in package.namelist():
        return
    mimetype = package.read("mimetype").decode("ascii", "replace").strip()
    if mimetype not in allowed:
        raise LoaderError(str(path), f"not {what} (mimetype {mimetype[:80]!r})")


def heading_title(sections: Sequence[Section]) -> str:
    """The title a document's headings give it, for a format that names none: the first
    heading, when every section with a heading lies under it, as docutils takes a lone
    top-level section title for the document's. Headings side by side at the top
    ("Install", "Usage"; "Guide", "Appendix") are sections of an untitled document, and a
    quote of "Usage" must not read as if it stood under "Install"."""
    paths = [s.heading_path for s in sections if s.heading_path]
    if not paths or any(p[0] != paths[0][0] for p in paths):
        return ""
    return paths[0][0]


def sections_from_spans(
    lines: list[str], headings: list[tuple[int, int, int, str]]
) -> list[Section]:
    """Cut ``lines`` into sections. ``headings`` = (first_line, end_line, level, text), sorted.

    A heading's path is its own text under the nearest preceding headings of a lower level;
    the text before the first heading is a section with an empty path.
    """
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    cursor = 0
    path: tuple[str, ...] = ()
    for start, end, level, text in headings:
        body = strip_blank_edges("\n".join(lines[cursor:start]))
        if body:
            sections.append(Section(text=body, heading_path=path))
        path = enter_heading(stack, level, text)
        cursor = end
    body = strip_blank_edges("\n".join(lines[cursor:]))
    if body:
        sections.append(Section(text=body, heading_path=path))
    return sections
