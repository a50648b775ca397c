"""Loader tests on generated fixtures: every supported format, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.loaders import LOADER_VERSION, SUPPORTED_EXTENSIONS, load_document
from rag.errors import LoaderError, UnsupportedFileType
from rag.types import Document
from tests.documents import encrypt_pdf, make_pdf

# ----------------------------------------------------------------------------------- helpers


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def assert_load_error(path: Path, *reason_parts: str) -> LoaderError:
    with pytest.raises(LoaderError) as info:
        load_document(path)
    err = info.value
    assert err.path == str(path)
    assert str(path) in str(err)
    for part in reason_parts:
        assert part in err.reason, err.reason
    return err


# ------------------------------------------------------------------------------ public API


def test_public_constants() -> None:
    assert {".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".pdf", ".docx"} == set(
        SUPPORTED_EXTENSIONS
    )
    assert isinstance(LOADER_VERSION, str) and LOADER_VERSION


def test_source_defaults_to_resolved_path_and_can_be_overridden(tmp_path: Path) -> None:
    path = _write(tmp_path, "notes.txt", "hello world\n")
    assert load_document(path).source == str(path.resolve())
    assert load_document(path, source="kb://notes").source == "kb://notes"


# -------------------------------------------------------------------------------------- text


def test_txt_single_section_title_is_stem(tmp_path: Path) -> None:
    path = _write(tmp_path, "release-notes.TXT", "\ufeffFirst line\r\nSecond line\r\n\r\n")
    doc = load_document(path)
    assert isinstance(doc, Document)
    assert doc.title == "release-notes"
    assert len(doc.sections) == 1
    assert doc.sections[0].text == "First line\nSecond line"
    assert doc.sections[0].heading_path == ()
    assert doc.sections[0].page is None


# ---------------------------------------------------------------------------------- markdown

MARKDOWN = """\
---
layout: page
---
Intro paragraph before any heading.

# Install Guide

Install text.

```bash
# this is a shell comment, not a heading
pip install thing
```

Setext Section
--------------

Setext body.

### Deep *Dive*

Deep body.

## Usage

Usage body.

# Appendix

Appendix body.
"""


def test_markdown_heading_paths_fences_and_setext(tmp_path: Path) -> None:
    doc = load_document(_write(tmp_path, "guide.md", MARKDOWN))
    assert doc.title == "Install Guide"
    paths = [s.heading_path for s in doc.sections]
    assert paths == [
        (),
        ("Install Guide",),
        ("Install Guide", "Setext Section"),
        ("Install Guide", "Setext Section", "Deep Dive"),
        ("Install Guide", "Usage"),
        ("Appendix",),
    ]
    by_path = {s.heading_path: s.text for s in doc.sections}
    assert by_path[()] == "Intro paragraph before any heading."
    install = by_path[("Install Guide",)]
    assert "# this is a shell comment, not a heading\npip install thing" in install
    assert by_path[("Install Guide", "Setext Section")] == "Setext body."
    assert "layout: page" not in doc.text  # front matter is metadata, not content


def test_markdown_front_matter_title(tmp_path: Path) -> None:
    text = '---\ntitle: "My Page"\n---\n\n# Heading\n\nBody.\n'
    doc = load_document(_write(tmp_path, "page.markdown", text))
    assert doc.title == "My Page"
    assert doc.sections[0].heading_path == ("Heading",)


# -------------------------------------------------------------------------------------- reST

RST = """\
=================
 The Big Manual
=================

Preface text.

Getting started
===============

Start here with :func:`setup`.

Configuration
-------------

Config text::

    ============
    not a title because indented
    ============

:mod:`json` options
-------------------

Options text.

Reference
=========

Reference text.
"""


def test_rst_levels_follow_adornment_order(tmp_path: Path) -> None:
    doc = load_document(_write(tmp_path, "manual.rst", RST))
    assert doc.title == "The Big Manual"
    paths = [s.heading_path for s in doc.sections]
    assert paths == [
        ("The Big Manual",),
        ("The Big Manual", "Getting started"),
        ("The Big Manual", "Getting started", "Configuration"),
        ("The Big Manual", "Getting started", "json options"),
        ("The Big Manual", "Reference"),
    ]
    config = doc.sections[2].text
    assert "not a title because indented" in config
    assert doc.sections[0].text == "Preface text."


# -------------------------------------------------------------------------------------- HTML

HTML = """\
<!DOCTYPE html>
<html><head><meta charset="iso-8859-1"><title>Widget Docs</title>
<style>body { color: red }</style><script>var tracking = "SCRIPT-TEXT";</script></head>
<body>
<nav class="top">Home | Products | NAV-TEXT</nav>
<div class="related" role="navigation"><h3>Navigation</h3><ul><li>index</li></ul></div>
<div class="document"><div class="body" role="main">
  <h1>Widgets<a class="headerlink" href="#w">\xb6</a></h1>
  <p>Widgets are   small
     things for caf\xe9 owners.</p>
  <h2>Setup</h2>
  <p>Run the installer.</p>
  <pre>def main():
    return 1</pre>
  <table><tr><th>Name</th><th>Value</th></tr><tr><td><p>size</p></td><td>3</td></tr></table>
  <h3>Advanced</h3>
  <ul><li>first item</li><li>second item</li></ul>
  <div class="admonition note"><p class="admonition-title">Note</p><p>Careful.</p></div>
  <h2>Usage</h2>
  <p>Use it.</p>
</div></div>
<div class="sphinxsidebar"><h3>Previous topic</h3><p>SIDEBAR-TEXT</p></div>
<footer>&copy; Copyright 2024 FOOTER-TEXT</footer>
<div class="footer">Created using Sphinx. FOOTERDIV-TEXT</div>
</body></html>
"""


def test_html_boilerplate_removed_and_heading_paths_kept(tmp_path: Path) -> None:
    path = _write(tmp_path, "widgets.html", HTML.encode("latin-1"))
    doc = load_document(path)
    assert doc.title == "Widget Docs"
    text = doc.text
    for junk in (
        "SCRIPT-TEXT",
        "color: red",
        "NAV-TEXT",
        "Navigation",
        "SIDEBAR-TEXT",
        "Previous topic",
        "FOOTER-TEXT",
        "FOOTERDIV-TEXT",
        "\xb6",
    ):
        assert junk not in text, junk
    paths = [s.heading_path for s in doc.sections]
    assert paths == [
        ("Widgets",),
        ("Widgets", "Setup"),
        ("Widgets", "Setup", "Advanced"),
        ("Widgets", "Usage"),
    ]
    # meta charset honoured; whitespace collapsed inside a paragraph
    assert doc.sections[0].text == "Widgets are small things for café owners."
    setup = doc.sections[1].text
    assert "Run the installer.\n\ndef main():\n    return 1\n\n" in setup  # pre keeps newlines
    assert "Name | Value\nsize | 3" in setup
    advanced = doc.sections[2].text
    assert "first item\nsecond item" in advanced
    assert "Note\n\nCareful." in advanced


def test_html_docbook_chrome_and_admonition(tmp_path: Path) -> None:
    page = (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>5.1. Basics</title></head>'
        '<body id="docContent"><div class="navheader"><table><tr><td><a>Prev</a></td>'
        "<td><a>Up</a></td><td><a>Next</a></td></tr></table></div>"
        '<div class="sect1"><h2 class="title">5.1. Basics</h2><p>A table has rows.</p>'
        '<div class="tip"><h3 class="title">Tip</h3><p>Name things well.</p></div>'
        "<p>After the tip.</p></div>"
        '<div class="navfooter"><table><tr><td>Home</td></tr></table></div></body></html>'
    )
    doc = load_document(_write(tmp_path, "basics.htm", page))
    assert doc.title == "5.1. Basics"
    assert len(doc.sections) == 1
    assert doc.sections[0].heading_path == ("5.1. Basics",)
    assert doc.sections[0].text == "A table has rows.\n\nTip\n\nName things well.\n\nAfter the tip."


def test_html_title_falls_back_to_h1_then_stem(tmp_path: Path) -> None:
    doc = load_document(_write(tmp_path, "a.html", "<body><h1>Only H1</h1><p>x y</p></body>"))
    assert doc.title == "Only H1"
    doc = load_document(_write(tmp_path, "plain-page.html", "<p>just text</p>"))
    assert doc.title == "plain-page"


def test_html_only_boilerplate_has_no_text(tmp_path: Path) -> None:
    path = _write(tmp_path, "chrome.html", "<html><body><nav>menu</nav><script>x()</script>")
    assert_load_error(path, "no extractable text")


# --------------------------------------------------------------------------------------- PDF


def test_pdf_one_section_per_page(tmp_path: Path) -> None:
    data = make_pdf([["Alpha page one", "second line"], ["Beta page two"]], title="Spec Book")
    doc = load_document(_write(tmp_path, "spec.pdf", data))
    assert doc.title == "Spec Book"
    assert [s.page for s in doc.sections] == [1, 2]
    assert all(s.heading_path == () for s in doc.sections)
    assert doc.sections[0].text == "Alpha page one\nsecond line"
    assert doc.sections[1].text == "Beta page two"


def test_pdf_title_falls_back_to_first_line(tmp_path: Path) -> None:
    doc = load_document(_write(tmp_path, "x.pdf", make_pdf([["Quarterly Report", "numbers"]])))
    assert doc.title == "Quarterly Report"


def test_pdf_empty_password_encryption_still_loads(tmp_path: Path) -> None:
    data = encrypt_pdf(make_pdf([["Readable anyway"]]), user_password="")
    doc = load_document(_write(tmp_path, "owner-only.pdf", data))
    assert doc.sections[0].text == "Readable anyway"


def test_pdf_encrypted(tmp_path: Path) -> None:
    data = encrypt_pdf(make_pdf([["Secret stuff"]]), user_password="hunter2")
    assert_load_error(_write(tmp_path, "locked.pdf", data), "encrypted PDF", "password")


def test_pdf_corrupt(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 8)
    assert_load_error(path, "corrupt PDF")
    path = _write(tmp_path, "not-a.pdf", b"<html>this is not a pdf</html>")
    assert_load_error(path, "corrupt PDF")


def test_pdf_without_text(tmp_path: Path) -> None:
    path = _write(tmp_path, "scan.pdf", make_pdf([[]]))
    assert_load_error(path, "no extractable text")


# -------------------------------------------------------------------------------------- DOCX


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
    assert_load_error(_write(tmp_path, "bad.docx", b"PK\x03\x04garbage"), "corrupt DOCX")
    assert_load_error(_write(tmp_path, "plain.docx", b"hello"), "corrupt DOCX")
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64
    assert_load_error(_write(tmp_path, "locked.docx", ole), "encrypted DOCX or legacy .doc")


# --------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("ext", sorted(SUPPORTED_EXTENSIONS))
def test_zero_byte_file(tmp_path: Path, ext: str) -> None:
    assert_load_error(_write(tmp_path, f"empty{ext}", b""), "empty file")


@pytest.mark.parametrize("ext", [".txt", ".md", ".rst", ".html"])
def test_whitespace_only_file(tmp_path: Path, ext: str) -> None:
    assert_load_error(_write(tmp_path, f"blank{ext}", " \n\t\n"), "empty file")


@pytest.mark.parametrize("ext", [".txt", ".md", ".rst", ".html"])
def test_binary_under_text_extension(tmp_path: Path, ext: str) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    assert_load_error(_write(tmp_path, f"image{ext}", png), "binary content")


def test_control_characters_count_as_binary(tmp_path: Path) -> None:
    data = bytes([1, 2, 3, 4, 5, 6, 7, 0x0E, 0x0F, 0x10]) * 20 + b"some text"
    assert_load_error(_write(tmp_path, "ctl.txt", data), "binary content")


@pytest.mark.parametrize("ext", [".txt", ".md", ".rst"])
def test_invalid_utf8(tmp_path: Path, ext: str) -> None:
    path = _write(tmp_path, f"latin{ext}", "café au lait\n".encode("latin-1"))
    assert_load_error(path, "not valid UTF-8", "0xe9", "offset 3")


def test_utf16_text_is_reported_as_not_utf8(tmp_path: Path) -> None:
    path = _write(tmp_path, "wide.txt", "hello".encode("utf-16"))
    assert_load_error(path, "not valid UTF-8", "UTF-16")


def test_utf16_html_is_decoded(tmp_path: Path) -> None:
    path = _write(tmp_path, "wide.html", "<p>héllo wide</p>".encode("utf-16"))
    assert load_document(path).text == "héllo wide"


def test_unsupported_extension(tmp_path: Path) -> None:
    path = _write(tmp_path, "data.xlsx", b"PK\x03\x04")
    with pytest.raises(UnsupportedFileType) as info:
        load_document(path)
    assert info.value.path == str(path)
    assert "unsupported file type '.xlsx'" in info.value.reason
    no_ext = _write(tmp_path, "Makefile", "all:\n")
    with pytest.raises(UnsupportedFileType, match="no file extension"):
        load_document(no_ext)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert_load_error(tmp_path / "nope.md", "file not found")
    folder = tmp_path / "folder.md"
    folder.mkdir()
    assert_load_error(folder, "directory")
