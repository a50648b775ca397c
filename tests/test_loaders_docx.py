"""DOCX loader: heading paths, tables, title fallbacks, corrupt and encrypted files, ZIP bombs."""

from __future__ import annotations

from pathlib import Path

import pytest

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

    document = docx.Document()
    document.core_properties.title = ""
    for heading in ("Introduction", "Methods"):  # chapters side by side, no title above them
        document.add_heading(heading, level=1)
        document.add_paragraph(f"{heading} body.")
    document.save(str(tmp_path / "report.docx"))
    assert load_document(tmp_path / "report.docx").title == "report"


def test_docx_corrupt(tmp_path: Path) -> None:
    assert_load_error(write_file(tmp_path, "bad.docx", b"PK\x03\x04garbage"), "corrupt DOCX")
    assert_load_error(write_file(tmp_path, "plain.docx", b"hello"), "corrupt DOCX")
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64
    assert_load_error(write_file(tmp_path, "locked.docx", ole), "encrypted DOCX or legacy .doc")


def zip_bomb(path: Path, *, member_bytes: int, members: int = 1) -> Path:
    """A small DOCX-named ZIP whose parts unpack to ``member_bytes`` of one repeated byte."""
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", "<Types/>")
        for n in range(members):
            name = "word/document.xml" if n == 0 else f"word/media/part{n}.xml"
            package.writestr(name, b"\x20" * member_bytes)
    return path


def test_docx_decompression_bomb_is_refused_before_parsing(tmp_path: Path) -> None:
    bomb = zip_bomb(tmp_path / "bomb.docx", member_bytes=64 * 1024 * 1024)
    assert bomb.stat().st_size < 200_000  # small on disk, 64 MiB unpacked
    assert_load_error(bomb, "'word/document.xml'", "compression ratio", "decompression bomb")


def test_zip_limits_on_total_size_and_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest.loaders import base

    monkeypatch.setattr(base, "ZIP_MAX_UNCOMPRESSED_BYTES", 100_000)
    many = zip_bomb(tmp_path / "big.docx", member_bytes=60_000, members=2)
    assert_load_error(many, "unpacks to", "over the limit of 100000")
    monkeypatch.setattr(base, "ZIP_MAX_ENTRIES", 3)
    crowded = zip_bomb(tmp_path / "crowded.docx", member_bytes=10, members=4)
    assert_load_error(crowded, "5 entries, over 3")
