"""Loader throughput of the office, book, table and mail formats: files/s and MB/s per format.

    python bench/bench_loaders.py [--files 20] [--scale 1] [--repeat 3]
                                  [--formats pptx,xlsx,csv,epub,odt,eml] [--json]

Writes ``--files`` files of each format into a temporary folder with the formats' own
libraries (python-pptx, openpyxl, the stdlib; EPUB and ODT packages by hand), then times
``load_document`` over each format's files: the best of ``--repeat`` passes, wall clock, one
thread. At scale 1 a file holds 20 slides with notes (PPTX), 2,000 rows of 6 columns (XLSX,
CSV), 10 chapters of 30 paragraphs (EPUB), 300 paragraphs under 30 headings (ODT), 100
paragraphs and a CSV attachment (EML); ``--scale`` multiplies them. MB/s counts the files'
bytes on disk (compressed, for the ZIP formats). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import tempfile
import time
import zipfile
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from ingest.loaders import load_document

WORDS = (
    "harbour lamp keeper storm ledger invoice roof slate budget quarter revenue market "
    "chapter river orchard north south ticket engine valve pump filter sensor report"
).split()


def sentence(rng: random.Random, n: int = 12) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_pptx(path: Path, rng: random.Random, scale: int) -> None:
    from pptx import Presentation

    deck = Presentation()
    for n in range(20 * scale):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"Slide {n} {rng.choice(WORDS)}"
        slide.placeholders[1].text = "\n".join(sentence(rng, 8) for _ in range(5))
        slide.notes_slide.notes_text_frame.text = sentence(rng, 20)
    deck.save(str(path))


def table_rows(rng: random.Random, scale: int) -> list[list[Any]]:
    rows: list[list[Any]] = [["Id", "Name", "Region", "Amount", "Date", "Note"]]
    for n in range(2000 * scale):
        rows.append(
            [n, f"{rng.choice(WORDS)} {n}", rng.choice(WORDS), round(rng.uniform(1, 9999), 2),
             f"2025-{1 + n % 12:02d}-{1 + n % 28:02d}", sentence(rng, 6)]
        )  # fmt: skip
    return rows


def make_xlsx(path: Path, rng: random.Random, scale: int) -> None:
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Data")
    for row in table_rows(rng, scale):
        sheet.append(row)
    workbook.save(path)


def make_csv(path: Path, rng: random.Random, scale: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(table_rows(rng, scale))


def make_epub(path: Path, rng: random.Random, scale: int) -> None:
    chapters = 10 * scale
    items = "".join(
        f'<item id="c{n}" href="c{n}.xhtml" media-type="application/xhtml+xml"/>'
        for n in range(chapters)
    )
    nav_links = "".join(f'<li><a href="c{n}.xhtml">Chapter {n}</a></li>' for n in range(chapters))
    opf = (
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0"><metadata '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Bench Book</dc:title></metadata>'
        f'<manifest>{items}<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" '
        'properties="nav"/></manifest><spine>'
        + "".join(f'<itemref idref="c{n}"/>' for n in range(chapters))
        + "</spine></package>"
    )
    page = '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title></head><body>{}</body></html>'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("mimetype", "application/epub+zip", zipfile.ZIP_STORED)
        book.writestr(
            "META-INF/container.xml",
            '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OEBPS/content.opf"/></rootfiles></container>',
        )
        book.writestr("OEBPS/content.opf", opf)
        book.writestr("OEBPS/nav.xhtml", page.format(f"<nav><ol>{nav_links}</ol></nav>"))
        for n in range(chapters):
            body = f"<h1>Chapter {n}</h1>" + "".join(
                f"<p>{sentence(rng, 25)}</p>" for _ in range(30)
            )
            book.writestr(f"OEBPS/c{n}.xhtml", page.format(body))


def make_odt(path: Path, rng: random.Random, scale: int) -> None:
    blocks = []
    for n in range(30 * scale):
        blocks.append(f'<text:h text:outline-level="{1 + n % 2}">Part {n}</text:h>')
        blocks += [f"<text:p>{sentence(rng, 25)}</text:p>" for _ in range(10)]
    content = (
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text>'
        + "".join(blocks)
        + "</office:text></office:body></office:document-content>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("mimetype", "application/vnd.oasis.opendocument.text", zipfile.ZIP_STORED)
        package.writestr("content.xml", content)


def make_eml(path: Path, rng: random.Random, scale: int) -> None:
    message = EmailMessage()
    message["From"], message["To"] = "ann@example.com", "team@example.com"
    message["Subject"], message["Date"] = sentence(rng, 5), "Tue, 04 Mar 2025 09:15:00 +0000"
    message.set_content("\n\n".join(sentence(rng, 25) for _ in range(100 * scale)))
    table = io.StringIO()
    csv.writer(table).writerows(table_rows(rng, 1)[:200])
    message.add_attachment(
        table.getvalue().encode(), maintype="text", subtype="csv", filename="t.csv"
    )
    path.write_bytes(message.as_bytes())


MAKERS: dict[str, Callable[[Path, random.Random, int], None]] = {
    "pptx": make_pptx,
    "xlsx": make_xlsx,
    "csv": make_csv,
    "epub": make_epub,
    "odt": make_odt,
    "eml": make_eml,
}


def bench(kind: str, folder: Path, files: int, scale: int, repeat: int) -> dict[str, Any]:
    rng = random.Random(kind)
    paths = [folder / f"{kind}{n}.{kind}" for n in range(files)]
    for path in paths:
        MAKERS[kind](path, rng, scale)
    size = sum(p.stat().st_size for p in paths)
    best = float("inf")
    sections = chars = 0
    for _ in range(repeat):
        started = time.perf_counter()
        docs = [load_document(p) for p in paths]
        best = min(best, time.perf_counter() - started)
        sections = sum(len(d.sections) for d in docs)
        chars = sum(len(d.text) for d in docs)
    return {
        "format": kind,
        "files": files,
        "mb": round(size / 1e6, 2),
        "seconds": round(best, 3),
        "files_per_s": round(files / best, 1),
        "mb_per_s": round(size / 1e6 / best, 2),
        "sections_per_file": round(sections / files, 1),
        "text_chars_per_file": chars // files,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20, help="files of each format")
    parser.add_argument("--scale", type=int, default=1, help="multiplies each file's content")
    parser.add_argument("--repeat", type=int, default=3, help="passes; the best is reported")
    parser.add_argument("--formats", default=",".join(MAKERS), help="comma-separated")
    parser.add_argument("--json", action="store_true", help="one JSON object per format")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.formats.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(MAKERS))
    if unknown:
        parser.error(f"unknown formats: {', '.join(unknown)} (known: {', '.join(MAKERS)})")
    with tempfile.TemporaryDirectory(prefix="bench-loaders-") as tmp:
        results = [bench(k, Path(tmp), args.files, args.scale, args.repeat) for k in kinds]
    if args.json:
        for result in results:
            print(json.dumps(result))
        return
    print(f"{args.files} files per format, scale {args.scale}, best of {args.repeat} passes")
    header = ("MB", 7), ("files/s", 8), ("MB/s", 7), ("sections/file", 14), ("chars/file", 11)
    print(f"{'format':6s} " + " ".join(f"{name:>{width}s}" for name, width in header))
    for r in results:
        print(
            f"{r['format']:6s} {r['mb']:7.2f} {r['files_per_s']:8.1f} {r['mb_per_s']:7.2f} "
            f"{r['sections_per_file']:14.1f} {r['text_chars_per_file']:11d}"
        )


if __name__ == "__main__":
    main()
