"""PPTX loader: slide titles as headings, slide numbers as pages, notes, tables, groups; corrupt,
encrypted and ZIP-bomb files."""

from __future__ import annotations

from pathlib import Path

from ingest.loaders import load_document
from tests.documents import assert_load_error, write_file
from tests.test_loaders_docx import zip_bomb


def make_pptx(path: Path, *, title: str = "Quarterly Review") -> Path:
    """Five slides: a title slide, bullets with speaker notes, a table, an untitled slide with
    a grouped text box, and a title-only slide."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    deck.core_properties.title = title
    cover = deck.slides.add_slide(deck.slide_layouts[0])
    cover.shapes.title.text = "Quarterly Review"
    cover.placeholders[1].text = "Sales team, spring"
    bullets = deck.slides.add_slide(deck.slide_layouts[1])
    bullets.shapes.title.text = "Revenue"
    bullets.placeholders[1].text = "Revenue grew 12 percent\nNew market: Chile"
    bullets.notes_slide.notes_text_frame.text = "Mention the Valparaiso warehouse."
    table_slide = deck.slides.add_slide(deck.slide_layouts[5])
    table_slide.shapes.title.text = "Headcount"
    table = table_slide.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    table.cell(0, 0).text, table.cell(0, 1).text = "Team", "People"
    table.cell(1, 0).text, table.cell(1, 1).text = "Sales", "14"
    blank = deck.slides.add_slide(deck.slide_layouts[6])
    blank.shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1)).text = "Loose text"
    group = blank.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(3), Inches(4), Inches(1)).text = "Inside a group"
    closing = deck.slides.add_slide(deck.slide_layouts[5])
    closing.shapes.title.text = "Questions?"
    deck.save(str(path))
    return path


def test_pptx_slides_become_sections_with_titles_notes_and_pages(tmp_path: Path) -> None:
    doc = load_document(make_pptx(tmp_path / "review.pptx"))
    assert doc.title == "Quarterly Review"
    assert [(s.page, s.heading_path, s.text) for s in doc.sections] == [
        (1, ("Quarterly Review",), "Sales team, spring"),
        (
            2,
            ("Revenue",),
            "Revenue grew 12 percent\nNew market: Chile\n\n"
            "Speaker notes: Mention the Valparaiso warehouse.",
        ),
        (3, ("Headcount",), "Team | People\nSales | 14"),
        (4, (), "Loose text\n\nInside a group"),
        (5, ("Questions?",), "Questions?"),
    ]


def test_pptx_title_falls_back_to_the_first_slide_title(tmp_path: Path) -> None:
    assert load_document(make_pptx(tmp_path / "a.pptx", title="")).title == "Quarterly Review"
    # PowerPoint's template title is nobody's choice either.
    placeholder = make_pptx(tmp_path / "b.pptx", title="PowerPoint Presentation")
    assert load_document(placeholder).title == "Quarterly Review"


def test_pptx_corrupt_encrypted_and_foreign_packages(tmp_path: Path) -> None:
    assert_load_error(write_file(tmp_path, "bad.pptx", b"PK\x03\x04garbage"), "corrupt PPTX")
    assert_load_error(write_file(tmp_path, "plain.pptx", b"hello"), "corrupt PPTX")
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64
    assert_load_error(write_file(tmp_path, "locked.pptx", ole), "encrypted PPTX or legacy .ppt")
    import docx

    docx.Document().save(str(tmp_path / "letter.pptx"))  # a DOCX under the wrong name
    assert_load_error(tmp_path / "letter.pptx", "corrupt PPTX")


def test_pptx_decompression_bomb_is_refused_before_parsing(tmp_path: Path) -> None:
    bomb = zip_bomb(tmp_path / "bomb.pptx", member_bytes=8 * 1024 * 1024)
    assert_load_error(bomb, "PPTX part", "compression ratio", "decompression bomb")
