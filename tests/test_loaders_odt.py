"""ODT loader: outline levels as heading paths, lists, tables, footnotes, frames, the title;
what is left out (indexes, deletions, comments); corrupt, encrypted, foreign, entity-bomb and
ZIP-bomb packages."""

from __future__ import annotations

import zipfile
from pathlib import Path

from ingest.loaders import load_document
from tests.documents import assert_load_error, write_file
from tests.test_loaders_docx import zip_bomb

NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
)
MIMETYPE = "application/vnd.oasis.opendocument.text"

BODY = (
    '<text:sequence-decls><text:sequence-decl text:name="Table"/></text:sequence-decls>'
    "<text:table-of-content><text:index-body><text:p>Minutes ... 1</text:p></text:index-body>"
    "</text:table-of-content>"
    '<text:p text:style-name="P1">Board Minutes</text:p>'
    "<text:p>Held in the <text:span>east</text:span><text:s text:c='3'/>room.</text:p>"
    '<text:h text:outline-level="1">Decisions</text:h>'
    "<text:p>The board approved<text:note><text:note-citation>1</text:note-citation>"
    "<text:note-body><text:p>By five votes to two.</text:p></text:note-body></text:note>"
    " the new roof.<office:annotation><text:p>check this</text:p></office:annotation></text:p>"
    "<text:list><text:list-item><text:p>Budget: 40,000 euros</text:p></text:list-item>"
    "<text:list-item><text:p>Start: May</text:p></text:list-item></text:list>"
    '<text:h text:outline-level="2">Contractors</text:h>'
    "<table:table><table:table-header-rows><table:table-row><table:table-cell>"
    "<text:p>Firm</text:p></table:table-cell><table:table-cell><text:p>Bid</text:p>"
    "</table:table-cell></table:table-row></table:table-header-rows><table:table-row>"
    "<table:table-cell><text:p>Slate and Sons</text:p></table:table-cell><table:table-cell>"
    "<text:p>38,500</text:p></table:table-cell></table:table-row></table:table>"
    "<text:tracked-changes><text:changed-region><text:deletion><text:p>Old plan</text:p>"
    "</text:deletion></text:changed-region></text:tracked-changes>"
    '<text:h text:outline-level="1">Next Meeting</text:h>'
    "<text:p>June 3<text:line-break/>Room 4<draw:frame><draw:text-box><text:p>Bring keys."
    "</text:p></draw:text-box></draw:frame></text:p>"
)


def make_odt(
    path: Path,
    body: str = BODY,
    *,
    title: str = "Minutes of March",
    parts: dict[str, str] | None = None,
) -> Path:
    """An ODT package as office suites write it: the mimetype first and stored, a manifest,
    content.xml with automatic styles (P1 is a Title paragraph) and meta.xml. ``parts``
    replaces or adds parts by name."""
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {NS} office:version="1.3">'
        '<office:automatic-styles><style:style style:name="P1" style:family="paragraph" '
        'style:parent-style-name="Title"/></office:automatic-styles>'
        f"<office:body><office:text>{body}</office:text></office:body></office:document-content>"
    )
    meta = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-meta {NS}><office:meta>'
        f"<dc:title>{title}</dc:title></office:meta></office:document-meta>"
    )
    manifest = (
        f'<?xml version="1.0" encoding="UTF-8"?><manifest:manifest {NS} manifest:version="1.3">'
        f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{MIMETYPE}"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    files = {"META-INF/manifest.xml": manifest, "content.xml": content, "meta.xml": meta}
    files.update(parts or {})
    with zipfile.ZipFile(path, "w") as package:
        package.writestr("mimetype", files.pop("mimetype", MIMETYPE), zipfile.ZIP_STORED)
        for name, text in files.items():
            package.writestr(name, text, zipfile.ZIP_DEFLATED)
    return path


def test_odt_headings_lists_tables_and_notes(tmp_path: Path) -> None:
    doc = load_document(make_odt(tmp_path / "minutes.odt"))
    assert doc.title == "Minutes of March"
    assert [(s.heading_path, s.text, s.page) for s in doc.sections] == [
        ((), "Held in the east room.", None),
        (
            ("Decisions",),
            "The board approved the new roof.\n\nBy five votes to two.\n\n"
            "Budget: 40,000 euros\n\nStart: May",
            None,
        ),
        (("Decisions", "Contractors"), "Firm | Bid\nSlate and Sons | 38,500", None),
        (("Next Meeting",), "June 3\nRoom 4\n\nBring keys.", None),
    ]


def test_odt_title_falls_back_to_title_style_then_a_heading_over_all(tmp_path: Path) -> None:
    assert load_document(make_odt(tmp_path / "a.odt", title="")).title == "Board Minutes"
    plain = BODY.replace('text:style-name="P1"', 'text:style-name="Standard"')
    # "Decisions" and "Next Meeting" side by side: neither is the document's title.
    assert load_document(make_odt(tmp_path / "b.odt", plain, title="")).title == "b"
    under = plain.replace('outline-level="1">Next', 'outline-level="2">Next')
    assert load_document(make_odt(tmp_path / "c.odt", under, title="")).title == "Decisions"


def test_odt_refusals(tmp_path: Path) -> None:
    assert_load_error(write_file(tmp_path, "bad.odt", b"PK\x03\x04garbage"), "corrupt ODT")
    assert_load_error(write_file(tmp_path, "plain.odt", b"hello"), "corrupt ODT")
    sheet = make_odt(
        tmp_path / "sheet.odt", parts={"mimetype": "application/vnd.oasis.opendocument.spreadsheet"}
    )
    assert_load_error(sheet, "not an OpenDocument text file", "spreadsheet")
    locked_manifest = (
        f'<manifest:manifest {NS}><manifest:file-entry manifest:full-path="content.xml" '
        'manifest:media-type="text/xml"><manifest:encryption-data manifest:checksum-type="SHA1" '
        'manifest:checksum="x"><manifest:algorithm manifest:algorithm-name="Blowfish CFB" '
        'manifest:initialisation-vector="x"/></manifest:encryption-data></manifest:file-entry>'
        "</manifest:manifest>"
    )
    locked = make_odt(
        tmp_path / "locked.odt",
        parts={"META-INF/manifest.xml": locked_manifest, "content.xml": "\x8a\x01 ciphertext"},
    )
    assert_load_error(locked, "encrypted ODT (password protected)")
    no_content = tmp_path / "empty.odt"
    with zipfile.ZipFile(no_content, "w") as package:
        package.writestr("mimetype", MIMETYPE)
    assert_load_error(no_content, "corrupt ODT: no content.xml")
    broken = make_odt(tmp_path / "broken.odt", parts={"content.xml": "<office:document-content"})
    assert_load_error(broken, "corrupt ODT", "'content.xml' is not well-formed XML")
    laughs = make_odt(
        tmp_path / "laughs.odt",
        parts={"content.xml": '<!DOCTYPE d [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;">]><d>&b;</d>'},
    )
    assert_load_error(laughs, "ODT part 'content.xml' refused", "Entities")


def test_odt_decompression_bomb_is_refused_before_parsing(tmp_path: Path) -> None:
    bomb = zip_bomb(tmp_path / "bomb.odt", member_bytes=8 * 1024 * 1024)
    assert_load_error(bomb, "ODT part", "compression ratio", "decompression bomb")
