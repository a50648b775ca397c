"""One file of each office, book, table and mail format, ingested through the real pipeline and
store (the hash embedder) beside a bad file of each: the bad ones fail alone with their
reasons, and a search finds each good one, with the place its citation points at."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ingest.loaders import sheet as sheet_module
from ingest.runs import ingest_into
from rag.catalog import open_collection
from rag.config import Settings
from rag.retrieval import HybridRetriever
from tests.fakes import HashEmbedder
from tests.test_loaders_docx import zip_bomb
from tests.test_loaders_eml import make_eml
from tests.test_loaders_epub import make_epub
from tests.test_loaders_odt import make_odt
from tests.test_loaders_pptx import make_pptx
from tests.test_loaders_xlsx import make_xlsx
from tests.test_python_api import open_docs

GEARBOX_ROW = 88


def write_folder(folder: Path) -> Path:
    folder.mkdir()
    make_pptx(folder / "review.pptx")
    parts: list[list[object]] = [["Part", "Bin"]]
    parts += [[f"Bolt size {n}", f"Shelf {n % 9}"] for n in range(2, 151)]
    parts[GEARBOX_ROW - 1] = ["Gearbox housing", "Vault Z9"]
    make_xlsx(folder / "stock.xlsx", {"Parts": parts}, title="Stock List")
    with (folder / "cities.csv").open("w", newline="") as out:
        csv.writer(out).writerows([["City", "Climate"], ["Lyon", "drizzly"], ["Oslo", "snowy"]])
    make_epub(folder / "brightwater.epub")
    make_odt(folder / "minutes.odt")
    make_eml(
        folder / "roof.eml",
        attachments={"budget.csv": b"Item,Cost\nScaffolding hire,4200\nSlate,12000\n"},
    )
    return folder


BAD = {
    "corrupt.pptx": "corrupt PPTX",
    "locked.xlsx": "encrypted XLSX",
    "long.csv": "table has more than 200 rows",
    "bomb.epub": "decompression bomb",
    "locked.odt": "encrypted ODT",
    "binary.eml": "binary content",
}


def write_bad_files(folder: Path) -> None:
    (folder / "corrupt.pptx").write_bytes(b"PK\x03\x04 not a package")
    (folder / "locked.xlsx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512))
    (folder / "long.csv").write_text("n\n" + "".join(f"{n}\n" for n in range(300)))
    zip_bomb(folder / "bomb.epub", member_bytes=8 * 1024 * 1024)
    manifest = (
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        "<manifest:file-entry><manifest:encryption-data/></manifest:file-entry></manifest:manifest>"
    )
    make_odt(folder / "locked.odt", parts={"META-INF/manifest.xml": manifest})
    (folder / "binary.eml").write_bytes(bytes(range(256)) * 4)


def test_each_new_format_is_found_with_its_place(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sheet_module, "SHEET_MAX_ROWS", 200)  # the real limit, met by a small file
    embedder = HashEmbedder()
    folder = write_folder(tmp_path / "docs")
    write_bad_files(folder)
    store = open_collection(settings, embedder, create=True)
    try:
        report = ingest_into(settings, store, embedder, [folder])
        assert sorted(Path(p).name for p in report.added) == sorted(
            [
                "review.pptx",
                "stock.xlsx",
                "cities.csv",
                "brightwater.epub",
                "minutes.odt",
                "roof.eml",
            ]
        )
        reasons = {Path(f.path).name: f.reason for f in report.failed}
        assert set(reasons) == set(BAD), reasons
        for name, needle in BAD.items():
            assert needle in reasons[name], (name, reasons[name])
        retriever = HybridRetriever(embedder, store, settings)

        def best(query: str) -> tuple[str, tuple[str, ...], int | None]:
            chunk = retriever.search(query, k=3)[0].chunk
            return Path(chunk.source).name, chunk.heading_path, chunk.page

        assert best("Valparaiso warehouse") == ("review.pptx", ("Revenue",), 2)
        name, (sheet, rows), page = best("Gearbox housing vault")
        first, last = (int(n) for n in rows.removeprefix("Rows ").split("–"))
        assert (name, sheet, page) == ("stock.xlsx", "Parts", None)
        assert first <= GEARBOX_ROW <= last
        assert best("which city is drizzly") == ("cities.csv", ("Rows 2–3",), None)
        assert best("keeper lit the lamp") == (
            "brightwater.epub",
            ("Chapter 2: The Lighthouse",),
            None,
        )
        assert best("Slate and Sons bid") == ("minutes.odt", ("Decisions", "Contractors"), None)
        assert best("when do the roofers start") == ("roof.eml", (), None)
        # The attachment is a document of its own, under the message's path, with its metadata.
        hit = retriever.search("scaffolding hire cost", k=3)[0].chunk
        assert Path(hit.source).relative_to(folder).as_posix() == "roof.eml/budget.csv"
        assert (hit.title, hit.heading_path) == ("budget", ("Rows 2–3",))
        assert dict(hit.metadata)["from"] == "Ann Example <ann@example.com>"
        scoped = retriever.search(
            "scaffolding hire cost", k=9, source_prefix=str(folder / "roof.eml")
        )
        assert {Path(h.chunk.source).name for h in scoped} == {"roof.eml", "budget.csv"}

        # Renamed, the message takes its attachment along; deleted, both go.
        (folder / "roof.eml").rename(folder / "mail.eml")
        report = ingest_into(settings, store, embedder, [folder])
        assert report.moved == [f"{folder / 'roof.eml'} -> {folder / 'mail.eml'}"]
        sources = {
            c.source
            for c, _ in store.fetch(
                [h.chunk.id for h in retriever.search("scaffolding hire cost", k=20)]
            )
        }
        assert str(folder / "mail.eml/budget.csv") in sources
        assert not any("roof.eml" in s for s in sources)
        count = store.count()
        (folder / "mail.eml").unlink()
        report = ingest_into(settings, store, embedder, [folder])
        assert report.deleted == [str(folder / "mail.eml")]
        assert store.count() < count
        left = retriever.search("scaffolding hire cost", k=50)
        assert not any("mail.eml" in h.chunk.source for h in left)
    finally:
        store.close()


def test_answers_cite_the_place_in_each_format(tmp_path: Path) -> None:
    """Through the Python API, quoting: each citation names the slide, sheet rows, chapter or
    attachment its quote came from."""
    folder = write_folder(tmp_path / "docs")
    with open_docs(tmp_path, answer_mode="quote", fallback_judge="off") as docs:
        docs.ingest(folder)

        def cited(question: str) -> tuple[str, tuple[str, ...], int | None]:
            answer = docs.ask(question)
            assert not answer.abstained and answer.citations, question
            first = answer.citations[0]
            return docs.display_source(first.source), first.heading_path, first.page

        assert cited("Valparaiso warehouse") == ("review.pptx", ("Revenue",), 2)
        assert cited("which city is drizzly") == ("cities.csv", ("Rows 2–3",), None)
        assert cited("keeper lit the lamp") == (
            "brightwater.epub",
            ("Chapter 2: The Lighthouse",),
            None,
        )
        assert cited("scaffolding hire cost") == ("roof.eml/budget.csv", ("Rows 2–3",), None)
