"""``load_document`` on every format: public constants, sources, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.loaders import LOADER_VERSION, SUPPORTED_EXTENSIONS, load_document
from rag.errors import UnsupportedFileType
from tests.documents import assert_load_error, write_file


def test_public_constants() -> None:
    assert {
        ".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".pdf", ".docx",
        ".pptx", ".xlsx", ".csv", ".epub", ".odt", ".eml",
    } == set(SUPPORTED_EXTENSIONS)  # fmt: skip
    assert isinstance(LOADER_VERSION, str) and LOADER_VERSION


def test_source_defaults_to_resolved_path_and_can_be_overridden(tmp_path: Path) -> None:
    path = write_file(tmp_path, "notes.txt", "hello world\n")
    assert load_document(path).source == str(path.resolve())
    assert load_document(path, source="kb://notes").source == "kb://notes"


@pytest.mark.parametrize("ext", sorted(SUPPORTED_EXTENSIONS))
def test_zero_byte_file(tmp_path: Path, ext: str) -> None:
    assert_load_error(write_file(tmp_path, f"empty{ext}", b""), "empty file")


@pytest.mark.parametrize("ext", [".txt", ".md", ".rst", ".html"])
def test_whitespace_only_file(tmp_path: Path, ext: str) -> None:
    assert_load_error(write_file(tmp_path, f"blank{ext}", " \n\t\n"), "empty file")


@pytest.mark.parametrize("ext", [".txt", ".md", ".rst", ".html"])
def test_binary_under_text_extension(tmp_path: Path, ext: str) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    assert_load_error(write_file(tmp_path, f"image{ext}", png), "binary content")


def test_control_characters_count_as_binary(tmp_path: Path) -> None:
    data = bytes([1, 2, 3, 4, 5, 6, 7, 0x0E, 0x0F, 0x10]) * 20 + b"some text"
    assert_load_error(write_file(tmp_path, "ctl.txt", data), "binary content")


@pytest.mark.parametrize("ext", [".txt", ".md", ".rst"])
def test_invalid_utf8(tmp_path: Path, ext: str) -> None:
    path = write_file(tmp_path, f"latin{ext}", "café au lait\n".encode("latin-1"))
    assert_load_error(path, "not valid UTF-8", "0xe9", "offset 3")


def test_utf16_text_is_reported_as_not_utf8(tmp_path: Path) -> None:
    path = write_file(tmp_path, "wide.txt", "hello".encode("utf-16"))
    assert_load_error(path, "not valid UTF-8", "UTF-16")


def test_unsupported_extension(tmp_path: Path) -> None:
    path = write_file(tmp_path, "data.xls", b"PK\x03\x04")
    with pytest.raises(UnsupportedFileType) as info:
        load_document(path)
    assert info.value.path == str(path)
    assert "unsupported file type '.xls'" in info.value.reason
    no_ext = write_file(tmp_path, "Makefile", "all:\n")
    with pytest.raises(UnsupportedFileType, match="no file extension"):
        load_document(no_ext)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert_load_error(tmp_path / "nope.md", "file not found")
    folder = tmp_path / "folder.md"
    folder.mkdir()
    assert_load_error(folder, "directory")
