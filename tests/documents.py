"""Real documents in every supported format, generated for tests (no files checked in).

Also the two helpers the loader tests share: writing a file and expecting a ``LoaderError``.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ingest.loaders import load_document
from rag.errors import LoaderError


def make_pdf(pages: list[list[str]], title: str | None = None) -> bytes:
    """A minimal valid PDF (Helvetica text, one content stream per page), no extra dependency."""
    n = len(pages)
    objs: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{' '.join(f'{4 + 2 * i} 0 R' for i in range(n))}] "
        f"/Count {n} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, lines in enumerate(pages):
        shown = " T* ".join(f"({line}) Tj" for line in lines)
        stream = f"BT /F1 12 Tf 14 TL 72 720 Td {shown} ET".encode()
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info_ref = ""
    if title is not None:
        objs.append(f"<< /Title ({title}) >>".encode())
        info_ref = f" /Info {len(objs)} 0 R"
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for k, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % k + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R{info_ref} >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def encrypt_pdf(data: bytes, user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def make_docx(path: Path, title: str, sections: list[tuple[str, str]]) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = title
    document.add_heading(title, level=1)
    for heading, text in sections:
        document.add_heading(heading, level=2)
        document.add_paragraph(text)
    document.save(str(path))


# One fact per file, so a question has exactly one right source.
FACTS = {
    "aurora.md": "Aurora",
    "harbour.txt": "Harbour",
    "tomatoes.rst": "Tomatoes",
    "skylark.html": "Skylark",
    "lighthouse.pdf": "Lighthouse",
    "orchard.docx": "Orchard",
}

QUESTIONS = {
    "How many brewing cycles between descaling the Aurora espresso machine?": "aurora.md",
    "At what time does the Harbour Street office close on weekdays?": "harbour.txt",
    "How deep should tomato seeds be sown?": "tomatoes.rst",
    "Which export format was removed in Skylark 4.2?": "skylark.html",
    "How far can the Lighthouse beam be seen?": "lighthouse.pdf",
    "How many apple trees grow in the orchard?": "orchard.docx",
}


def write_fixture_folder(folder: Path) -> Path:
    """Six files, one per supported format, each answering one of QUESTIONS."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "aurora.md").write_text(
        "# Aurora Espresso Machine\n\n## Descaling\n\nDescale the Aurora espresso machine "
        "every 240 brewing cycles, using citric acid.\n\n## Grinder\n\nThe grinder has "
        "eighteen settings; setting one is the finest.\n"
    )
    (folder / "harbour.txt").write_text(
        "Harbour Street Office\n\nThe Harbour Street office opens at 8:00 and closes at 18:30 on "
        "weekdays. Visitors sign in at reception and wear a green badge.\n"
    )
    (folder / "tomatoes.rst").write_text(
        "Growing Tomatoes\n================\n\nSowing\n------\n\nSow tomato seeds 6 mm deep "
        "in seed compost at 21 degrees Celsius, eight weeks before the last frost.\n"
    )
    (folder / "skylark.html").write_text(
        "<html><head><title>Skylark 4.2 Release Notes</title><script>track()</script></head>"
        "<body><nav>Home | Docs | Blog</nav><main><h1>Skylark 4.2</h1><h2>Removed</h2>"
        "<p>The legacy XML export format was removed in Skylark 4.2; use the JSON export.</p>"
        "</main><footer>Copyright Skylark contributors</footer></body></html>"
    )
    (folder / "lighthouse.pdf").write_bytes(
        make_pdf(
            [
                ["Lighthouse Keeper Handbook", "The lamp is lit at sunset every day."],
                ["The Lighthouse beam can be seen from 22 nautical miles away in clear weather."],
            ],
            title="Lighthouse Keeper Handbook",
        )
    )
    make_docx(
        folder / "orchard.docx",
        "Orchard Plan",
        [
            ("Trees", "The orchard has 48 apple trees and 12 pear trees."),
            ("Harvest", "Apples are harvested in late September."),
        ],
    )
    return folder


def write_file(folder: Path, name: str, content: str | bytes) -> Path:
    """``content`` written to ``folder/name``: text as UTF-8, bytes as they are."""
    path = folder / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def assert_load_error(path: Path, *reason_parts: str) -> LoaderError:
    """Loading ``path`` fails with a ``LoaderError`` naming the file and every reason part."""
    with pytest.raises(LoaderError) as info:
        load_document(path)
    err = info.value
    assert err.path == str(path)
    assert str(path) in str(err)
    for part in reason_parts:
        assert part in err.reason, err.reason
    return err
