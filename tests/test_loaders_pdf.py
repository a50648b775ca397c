"""PDF loader: one section per page, title fallbacks, encrypted and corrupt files."""

from __future__ import annotations

from pathlib import Path

from ingest.loaders import load_document
from tests.documents import assert_load_error, encrypt_pdf, make_pdf, write_file


def test_pdf_one_section_per_page(tmp_path: Path) -> None:
    data = make_pdf([["Alpha page one", "second line"], ["Beta page two"]], title="Spec Book")
    doc = load_document(write_file(tmp_path, "spec.pdf", data))
    assert doc.title == "Spec Book"
    assert [s.page for s in doc.sections] == [1, 2]
    assert all(s.heading_path == () for s in doc.sections)
    assert doc.sections[0].text == "Alpha page one\nsecond line"
    assert doc.sections[1].text == "Beta page two"


def test_pdf_title_falls_back_to_first_line(tmp_path: Path) -> None:
    doc = load_document(write_file(tmp_path, "x.pdf", make_pdf([["Quarterly Report", "numbers"]])))
    assert doc.title == "Quarterly Report"


def test_pdf_empty_password_encryption_still_loads(tmp_path: Path) -> None:
    data = encrypt_pdf(make_pdf([["Readable anyway"]]), user_password="")
    doc = load_document(write_file(tmp_path, "owner-only.pdf", data))
    assert doc.sections[0].text == "Readable anyway"


def test_pdf_encrypted(tmp_path: Path) -> None:
    data = encrypt_pdf(make_pdf([["Secret stuff"]]), user_password="hunter2")
    assert_load_error(write_file(tmp_path, "locked.pdf", data), "encrypted PDF", "password")


def test_pdf_corrupt(tmp_path: Path) -> None:
    path = write_file(tmp_path, "broken.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 8)
    assert_load_error(path, "corrupt PDF")
    path = write_file(tmp_path, "not-a.pdf", b"<html>this is not a pdf</html>")
    assert_load_error(path, "corrupt PDF")


def test_pdf_without_text(tmp_path: Path) -> None:
    path = write_file(tmp_path, "scan.pdf", make_pdf([[]]))
    assert_load_error(path, "no extractable text")
