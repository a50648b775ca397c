"""EPUB loader: chapters from the contents as headings, EPUB 3 and EPUB 2 packages, XHTML
quirks; corrupt, DRM-encrypted, entity-bomb and ZIP-bomb books."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from ingest.loaders import load_document
from tests.documents import assert_load_error, write_file
from tests.test_loaders_docx import zip_bomb

CONTAINER = (
    '<?xml version="1.0"?><container version="1.0" '
    'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
    '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
    "</rootfiles></container>"
)
XHTML = (
    '<?xml version="1.0" encoding="utf-8"?><!DOCTYPE html>'
    '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
    "<head><title>{book}</title></head><body>{body}</body></html>"
)
CHAPTERS = [
    ("Chapter 1: The Storm", "<h1>The Storm</h1><p>Rain fell on Brightwater for nine days.</p>"),
    (
        "Chapter 2: The Lighthouse",
        '<a id="page12"/><h1>Chapter 2: The Lighthouse</h1><p>The keeper lit the lamp.</p>'
        "<h2>The Logbook</h2><p>Entries in blue ink.</p>",
    ),
    ("Epilogue", "<p>Morning came.<br/>The sea was calm.</p>"),
]


def make_epub(
    path: Path,
    chapters: list[tuple[str, str]] = CHAPTERS,
    *,
    title: str = "Brightwater",
    epub3: bool = True,
    extra: dict[str, str] | None = None,
) -> Path:
    """A book of XHTML chapters in the spine, with an EPUB 3 navigation document (``epub3``)
    or an EPUB 2 NCX as its contents. ``extra``: more parts, by package path."""
    files = [f"text/ch{n}.xhtml" for n in range(1, len(chapters) + 1)]
    items = "".join(
        f'<item id="c{n}" href="{href}" media-type="application/xhtml+xml"/>'
        for n, href in enumerate(files, 1)
    )
    items += '<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>'
    if epub3:
        items += '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" '
        items += 'properties="nav"/>'
    spine = "".join(f'<itemref idref="c{n}"/>' for n in range(1, len(chapters) + 1))
    opf = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:title>{title}</dc:title></metadata><manifest>{items}</manifest>"
        f'<spine toc="ncx">{spine}</spine></package>'
    )
    nav = XHTML.format(
        book=title,
        body='<nav epub:type="toc"><ol>'
        + "".join(
            f'<li><a href="{href}">{label}</a></li>'
            for href, (label, _) in zip(files, chapters, strict=True)
        )
        + "</ol></nav>",
    )
    ncx = (
        '<?xml version="1.0"?><!DOCTYPE ncx PUBLIC "-//NISO//DTD ncx 2005-1//EN" '
        '"http://www.daisy.org/z3986/2005/ncx-2005-1.dtd">'
        '<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1"><navMap>'
        + "".join(
            f'<navPoint id="p{n}"><navLabel><text>{label}</text></navLabel>'
            f'<content src="{href}"/></navPoint>'
            for n, (href, (label, _)) in enumerate(zip(files, chapters, strict=True), 1)
        )
        + "</navMap></ncx>"
    )
    parts = {
        "META-INF/container.xml": CONTAINER,
        "OEBPS/content.opf": opf,
        "OEBPS/toc.ncx": ncx,
        **({"OEBPS/nav.xhtml": nav} if epub3 else {}),
        **{
            f"OEBPS/{href}": XHTML.format(book=title, body=body)
            for href, (_, body) in zip(files, chapters, strict=True)
        },
        **(extra or {}),
    }
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        for name, content in parts.items():
            book.writestr(name, content, zipfile.ZIP_DEFLATED)
    return path


EXPECTED = [
    (("Chapter 1: The Storm",), "Rain fell on Brightwater for nine days."),
    (("Chapter 2: The Lighthouse",), "The keeper lit the lamp."),
    (("Chapter 2: The Lighthouse", "The Logbook"), "Entries in blue ink."),
    (("Epilogue",), "Morning came.\nThe sea was calm."),
]


@pytest.mark.parametrize("epub3", [True, False], ids=["epub3-nav", "epub2-ncx"])
def test_epub_chapters_become_headings(tmp_path: Path, epub3: bool) -> None:
    doc = load_document(make_epub(tmp_path / "book.epub", epub3=epub3))
    assert doc.title == "Brightwater"
    assert [(s.heading_path, s.text, s.page) for s in doc.sections] == [
        (path, text, None) for path, text in EXPECTED
    ]


def test_epub_without_title_or_contents(tmp_path: Path) -> None:
    empty_ncx = {"OEBPS/toc.ncx": "<ncx xmlns='http://www.daisy.org/z3986/2005/ncx/'/>"}
    path = make_epub(tmp_path / "bare.epub", title="", epub3=False, extra=empty_ncx)
    doc = load_document(path)
    assert doc.title == "The Storm"  # the first chapter's own heading
    assert [s.heading_path for s in doc.sections] == [
        ("The Storm",),
        ("Chapter 2: The Lighthouse",),
        ("Chapter 2: The Lighthouse", "The Logbook"),
        (),
    ]


def test_epub_font_obfuscation_is_not_drm_but_encrypted_text_is(tmp_path: Path) -> None:
    def encryption(algorithm: str, uri: str) -> dict[str, str]:
        return {
            "META-INF/encryption.xml": (
                '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
                'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
                f'<enc:EncryptionMethod Algorithm="{algorithm}"/><enc:CipherData>'
                f'<enc:CipherReference URI="{uri}"/></enc:CipherData></enc:EncryptedData>'
                "</encryption>"
            )
        }

    fonts = encryption("http://www.idpf.org/2008/embedding", "OEBPS/fonts/serif.otf")
    assert len(load_document(make_epub(tmp_path / "fonts.epub", extra=fonts)).sections) == 4
    drm = encryption("http://www.w3.org/2001/04/xmlenc#aes128-cbc", "OEBPS/text/ch2.xhtml")
    assert_load_error(make_epub(tmp_path / "drm.epub", extra=drm), "encrypted EPUB")


def test_epub_corrupt_and_hostile(tmp_path: Path) -> None:
    assert_load_error(write_file(tmp_path, "bad.epub", b"PK\x03\x04garbage"), "corrupt EPUB")
    assert_load_error(write_file(tmp_path, "plain.epub", b"hello"), "corrupt EPUB")
    other = tmp_path / "other.epub"
    with zipfile.ZipFile(other, "w") as package:
        package.writestr("mimetype", "application/vnd.oasis.opendocument.text")
    assert_load_error(other, "not an EPUB", "opendocument")
    lost = tmp_path / "lost.epub"
    with zipfile.ZipFile(lost, "w") as package:
        package.writestr("mimetype", "application/epub+zip")
    assert_load_error(lost, "corrupt EPUB: no META-INF/container.xml")
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE c [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;">]>'
        "<container>&b;</container>"
    )
    bomb_xml = make_epub(tmp_path / "laughs.epub", extra={"META-INF/container.xml": laughs})
    assert_load_error(bomb_xml, "EPUB part 'container' refused", "Entities")
    bomb = zip_bomb(tmp_path / "bomb.epub", member_bytes=8 * 1024 * 1024)
    assert_load_error(bomb, "EPUB part", "compression ratio", "decompression bomb")
