"""Plain-text loader: one section titled by the file name."""

from __future__ import annotations

from pathlib import Path

from ingest.loaders import load_document
from rag.types import Document
from tests.documents import write_file


def test_txt_single_section_title_is_stem(tmp_path: Path) -> None:
    path = write_file(tmp_path, "release-notes.TXT", "\ufeffFirst line\r\nSecond line\r\n\r\n")
    doc = load_document(path)
    assert isinstance(doc, Document)
    assert doc.title == "release-notes"
    assert len(doc.sections) == 1
    assert doc.sections[0].text == "First line\nSecond line"
    assert doc.sections[0].heading_path == ()
    assert doc.sections[0].page is None
