"""Plain text (``.txt``): one section, titled by the file name."""

from __future__ import annotations

from pathlib import Path

from ingest.loaders.base import TitledSections, decode_utf8_text, strip_blank_edges
from rag.types import Section


def load_text(path: Path, data: bytes) -> TitledSections:
    """The whole file as one section; the title is the file's stem."""
    text = strip_blank_edges(decode_utf8_text(path, data))
    return path.stem, [Section(text=text)]
