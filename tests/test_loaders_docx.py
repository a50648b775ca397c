"""DOCX loader: heading paths, tables, title fallbacks, corrupt and encrypted files."""

from __future__ import annotations

from pathlib import Path

from ingest.loaders import load_document
from tests.documents import assert_load_error, write_file


def test_docx_headings_and_table(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = "Team Handbook"
    document.add_paragraph("Welcome text.")
    document.add_heading("Onboarding", level=1)
    document.add_paragraph("Day one tasks.")
    document.add_heading("Accounts", level=2)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "System", "Owner"
    table.cell(1, 0).text, table.cell(1, 1).text = "Email", "IT"
    document.add_heading("Leaving", level=1)
    document.add_paragraph("Return the laptop.")
    path = tmp_path / "handbook.docx"
    document.save(str(path))

    doc = load_document(path)
    assert doc.title == "Team Handbook"
    assert [(s.heading_path, s.text) for s in doc.sections] == [
        ((), "Welcome text."),
        (("Onboarding",), "Day one tasks."),
        (("Onboarding", "Accounts"), "System | Owner\nEmail | IT"),
        (("Leaving",), "Return the laptop."),
    ]


def test_docx_title_falls_back_to_first_heading(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = ""
    document.add_heading("Quick Start", level=1)
    document.add_paragraph("Body.")
    path = tmp_path / "qs.docx"
    document.save(str(path))
    assert load_document(path).title == "Quick Start"


def test_docx_corrupt(tmp_path: Path) -> None:
    assert_load_error(write_file(tmp_path, "bad.docx", b"PK\x03\x04garbage"), "corrupt DOCX")
    assert_load_error(write_file(tmp_path, "plain.docx", b"hello"), "corrupt DOCX")
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64
    assert_load_error(write_file(tmp_path, "locked.docx", ole), "encrypted DOCX or legacy .doc")
