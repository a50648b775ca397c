"""E-mail loader: subject as title, sender and date as metadata and on top, plain or HTML body,
attachments in supported formats as documents of their own; bad attachments skipped, bad
messages refused."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from pathlib import Path

import pytest

from ingest.loaders import load_document
from tests.documents import assert_load_error, make_docx, make_pdf, write_file

HEADERS = {
    "From": "Ann Example <ann@example.com>",
    "To": "team@example.com",
    "Date": "Tue, 04 Mar 2025 09:15:00 +0000",
}


def make_eml(
    path: Path,
    *,
    subject: str | None = "Roof repair plan",
    plain: str | None = "Hi all,\n\nThe roofers start on Monday 10 March.\n\nAnn\n",
    html: str | None = "<p>Hi all,</p><p>The roofers start on <b>Monday</b> 10 March.</p>",
    attachments: dict[str, bytes] | None = None,
) -> Path:
    message = EmailMessage()
    for name, value in HEADERS.items():
        message[name] = value
    if subject is not None:
        message["Subject"] = subject
    if plain is not None:
        message.set_content(plain)
    if html is not None:
        if plain is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    for name, data in (attachments or {}).items():
        maintype, subtype = (
            ("text", "csv") if name.endswith(".csv") else ("application", "octet-stream")
        )
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    path.write_bytes(message.as_bytes())
    return path


META = "\n".join(f"{name}: {value}" for name, value in HEADERS.items())


def test_eml_plain_body_with_metadata_on_top(tmp_path: Path) -> None:
    doc = load_document(make_eml(tmp_path / "roof.eml"))
    assert doc.title == "Roof repair plan"
    assert dict(doc.metadata) == {
        "subject": "Roof repair plan",
        "from": "Ann Example <ann@example.com>",
        "to": "team@example.com",
        "date": "Tue, 04 Mar 2025 09:15:00 +0000",
    }
    assert doc.attachments == ()
    assert [(s.heading_path, s.text) for s in doc.sections] == [
        ((), f"{META}\n\nHi all,\n\nThe roofers start on Monday 10 March.\n\nAnn"),
    ]


def test_eml_html_only_body_goes_through_the_html_extractor(tmp_path: Path) -> None:
    html = "<html><body><h1>Update</h1><p>Scaffolding <i>arrives</i> Friday.</p></body></html>"
    doc = load_document(make_eml(tmp_path / "html.eml", subject=None, plain=None, html=html))
    assert doc.title == "html"  # no subject: the file's stem
    assert [(s.heading_path, s.text) for s in doc.sections] == [
        ((), META),  # the body opens with a heading, so the metadata stands alone
        (("Update",), "Scaffolding arrives Friday."),
    ]


def test_eml_attachments_become_documents_and_bad_ones_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_docx(tmp_path / "plan.docx", "Roof Plan", [("Materials", "Slate tiles from Wales.")])
    attachments = {
        "plan.docx": (tmp_path / "plan.docx").read_bytes(),
        "costs.csv": b"Item,Cost\nSlate,12000\nLabour,26000\n",
        "quote.pdf": make_pdf([["Quote page one"], ["Total 38,000 euros"]]),
        "broken.pdf": b"%PDF-1.4 nothing else",
        "photo.jpg": b"\xff\xd8\xff\xe0 not read",
        "forwarded.eml": b"Subject: an attached e-mail is not opened\n\nbody\n",
        "../../etc/evil.txt": b"names are labels only",
        "sub/evil.txt": b"a second file of that name",
    }
    path = make_eml(tmp_path / "with.eml", html=None, attachments=attachments)
    with caplog.at_level(logging.WARNING, logger="ingest.loaders.eml"):
        doc = load_document(path, source="mail/with.eml")
    assert [s.text for s in doc.sections] == [
        f"{META}\n\nHi all,\n\nThe roofers start on Monday 10 March.\n\nAnn"
    ]
    found = {
        a.source: (a.title, [(s.heading_path, s.page, s.text) for s in a.sections])
        for a in doc.attachments
    }
    assert found == {
        "mail/with.eml/plan.docx": (
            "Roof Plan",
            [(("Roof Plan", "Materials"), None, "Slate tiles from Wales.")],
        ),
        "mail/with.eml/costs.csv": (
            "costs",
            [(("Rows 2–3",), None, "Item: Slate; Cost: 12000\nItem: Labour; Cost: 26000")],
        ),
        "mail/with.eml/quote.pdf": (
            "Quote page one",
            [((), 1, "Quote page one"), ((), 2, "Total 38,000 euros")],
        ),
        "mail/with.eml/evil.txt": ("evil", [((), None, "names are labels only")]),
        "mail/with.eml/evil (2).txt": ("evil (2)", [((), None, "a second file of that name")]),
    }
    # Each attachment carries the message's metadata: who sent it, when, under what subject.
    assert {dict(a.metadata)["subject"] for a in doc.attachments} == {"Roof repair plan"}
    assert "attachment 'broken.pdf' skipped: corrupt PDF" in caplog.text
    assert str(path) in caplog.text


def test_eml_without_a_body_still_carries_its_attachments(tmp_path: Path) -> None:
    message = EmailMessage()
    message["Subject"] = "Scan"
    message.add_attachment(
        b"Meter reading 4711", maintype="text", subtype="plain", filename="a.txt"
    )
    doc = load_document(write_file(tmp_path, "scan.eml", message.as_bytes()))
    assert [s.text for s in doc.sections] == ["Scan"]
    assert [a.sections[0].text for a in doc.attachments] == ["Meter reading 4711"]


def test_eml_charsets(tmp_path: Path) -> None:
    raw = (
        "From: a@example.com\nSubject: =?iso-8859-1?q?Caf=E9?=\nContent-Type: text/plain; "
        "charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\nCr\xe8me br\xfbl\xe9e.\n"
    ).encode("latin-1")
    doc = load_document(write_file(tmp_path, "latin.eml", raw))
    assert doc.title == "Café"
    assert doc.sections[0].text == "From: a@example.com\n\nCrème brûlée."
    unknown = raw.replace(b"iso-8859-1\nContent", b"x-no-such-charset\nContent")
    assert "Cr" in load_document(write_file(tmp_path, "odd.eml", unknown)).sections[0].text


def test_eml_refusals(tmp_path: Path) -> None:
    assert_load_error(write_file(tmp_path, "bin.eml", bytes(range(256)) * 4), "binary content")
    assert_load_error(write_file(tmp_path, "prose.eml", "just some words\n"), "no headers")
    headers_only = write_file(tmp_path, "nobody.eml", "Subject: \n\n\n")
    assert_load_error(headers_only, "no extractable text")
