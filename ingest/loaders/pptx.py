"""PowerPoint (``.pptx``): one section per slide, its number as the page, its title as heading.

python-pptx reads the package. A slide's text is its shapes' text in the slide's own order
(text boxes and placeholders a paragraph per line, tables a line per row with `` | `` between
cells, groups opened), then its speaker notes after ``Speaker notes:``; a slide with only a
title keeps the title as its text. The title is the core properties' title (unless it is
PowerPoint's placeholder), else the first slide title. Password-protected files and legacy
``.ppt`` files (both OLE containers) are refused with the reason, and so is a package over the
ZIP limits of ``base.check_zip_limits`` (checked before python-pptx reads it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.loaders.base import TitledSections, check_zip_package
from rag.errors import LoaderError
from rag.types import Section

if TYPE_CHECKING:
    from pptx.shapes.base import BaseShape
    from pptx.slide import Slide

# The title PowerPoint's blank template gives every new deck: not a title anyone chose.
_PLACEHOLDER_TITLES = frozenset({"powerpoint presentation"})


def load_pptx(path: Path, data: bytes) -> TitledSections:
    """Title and per-slide sections of a PPTX presentation."""
    import io
    import zipfile

    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    check_zip_package(
        path, data, "PPTX", ole_reason="encrypted PPTX or legacy .ppt file (OLE container)"
    )
    try:
        deck = Presentation(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoaderError(str(path), f"corrupt PPTX: {type(exc).__name__}: {exc}") from None

    try:
        title = (deck.core_properties.title or "").strip()
    except (ValueError, KeyError):  # malformed core.xml must not sink the slides
        title = ""
    if title.lower() in _PLACEHOLDER_TITLES:
        title = ""
    sections: list[Section] = []
    first_heading = ""
    for number, slide in enumerate(deck.slides, 1):
        heading, blocks = _slide_text(slide)
        first_heading = first_heading or heading
        body = "\n\n".join(blocks) or heading
        if body:
            sections.append(
                Section(text=body, heading_path=(heading,) if heading else (), page=number)
            )
    return title or first_heading, sections


def _slide_text(slide: Slide) -> tuple[str, list[str]]:
    """The slide's title and its text blocks: shapes in order, then the speaker notes."""
    title_shape = slide.shapes.title
    heading = _one_line(title_shape.text_frame.text) if title_shape is not None else ""
    blocks = [
        text
        for shape in slide.shapes
        if title_shape is None or shape.shape_id != title_shape.shape_id
        for text in _shape_text(shape)
    ]
    if slide.has_notes_slide:
        frame = slide.notes_slide.notes_text_frame
        notes = _lines(frame.text) if frame is not None else ""
        if notes:
            blocks.append(f"Speaker notes: {notes}")
    return heading, blocks


def _shape_text(shape: BaseShape) -> Iterator[str]:
    from pptx.shapes.autoshape import Shape
    from pptx.shapes.graphfrm import GraphicFrame
    from pptx.shapes.group import GroupShape

    if isinstance(shape, GroupShape):
        for inner in shape.shapes:
            yield from _shape_text(inner)
    elif isinstance(shape, GraphicFrame) and shape.has_table:
        rows = []
        for row in shape.table.rows:
            cells = [_one_line(cell.text) for cell in row.cells]
            if any(cells):
                rows.append(" | ".join(cells))
        if rows:
            yield "\n".join(rows)
    elif isinstance(shape, Shape) and shape.has_text_frame:
        text = _lines(shape.text_frame.text)
        if text:
            yield text


def _lines(text: str) -> str:
    # python-pptx writes a line break inside a paragraph as a vertical tab.
    lines = (" ".join(line.split()) for line in text.replace("\v", "\n").split("\n"))
    return "\n".join(line for line in lines if line)


def _one_line(text: str) -> str:
    return " ".join(text.split())
