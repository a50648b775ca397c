"""XLSX and CSV loaders: rows with their headers, sections by sheet and row range, captions,
encodings and dialects; corrupt, encrypted, ZIP-bomb and oversized tables."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest

from ingest.loaders import load_document
from ingest.loaders import sheet as sheet_module
from tests.documents import assert_load_error, write_file
from tests.test_loaders_docx import zip_bomb


def make_xlsx(path: Path, sheets: dict[str, list[list[object]]], *, title: str = "") -> Path:
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    workbook.properties.title = title
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


STAFF = [
    ["Name", "Team", "Started", "Salary"],
    ["Ann Lee", "Sales", dt.datetime(2021, 3, 1), 52000],
    [None, None, None, None],  # a blank row: skipped, but it keeps its number
    ["Bo Chen", "Support", dt.datetime(2022, 7, 15, 9, 30), 48500.5],
]


def test_xlsx_rows_carry_their_headers_under_sheet_and_row_range(tmp_path: Path) -> None:
    report = [["Quarterly sales"], [], ["Region", "Q1", None], ["North", 120, "best"]]
    path = make_xlsx(
        tmp_path / "staff.xlsx",
        {
            "Staff": STAFF,
            "Report": report,
            "Totals": [[1, 2], [3, True]],
            "Empty": [],
            "Plan": [["Owner", "Due"]],
        },
        title="Staff List",
    )
    doc = load_document(path)
    assert doc.title == "Staff List"
    assert [(s.heading_path, s.text, s.page) for s in doc.sections] == [
        (
            ("Staff", "Rows 2–4"),
            "Name: Ann Lee; Team: Sales; Started: 2021-03-01; Salary: 52000\n"
            "Name: Bo Chen; Team: Support; Started: 2022-07-15 09:30:00; Salary: 48500.5",
            None,
        ),
        # A caption above the header is kept as text; an unnamed column is named by its letter.
        (("Report", "Rows 1–4"), "Quarterly sales\nRegion: North; Q1: 120; Column C: best", None),
        # No header (numbers in the first row): cells joined.
        (("Totals", "Rows 1–2"), "1 | 2\n3 | TRUE", None),
        # An empty sheet adds nothing; a header with no rows under it is still text.
        (("Plan", "Row 1"), "Owner | Due", None),
    ]


def test_xlsx_long_sheet_is_cut_into_row_ranges_that_repeat_the_header(tmp_path: Path) -> None:
    rows: list[list[object]] = [["Part", "Bin"]]
    rows += [[f"Part number {n}", f"Bin {n % 7}"] for n in range(2, 302)]
    doc = load_document(make_xlsx(tmp_path / "parts.xlsx", {"Parts": rows}))
    assert doc.title == "parts"  # no title property: the file's stem
    assert len(doc.sections) > 300 // sheet_module.SHEET_ROWS_PER_SECTION
    expected_first = 2
    for section in doc.sections:
        sheet, label = section.heading_path
        first, last = (int(n) for n in label.removeprefix("Rows ").split("–"))
        assert sheet == "Parts" and first == expected_first
        lines = section.text.split("\n")
        assert len(lines) == last - first + 1 <= sheet_module.SHEET_ROWS_PER_SECTION
        assert len(section.text) <= sheet_module.SHEET_SECTION_CHARS
        assert all(line.startswith("Part: Part number ") and "; Bin: " in line for line in lines)
        expected_first = last + 1
    assert expected_first == 302


def test_xlsx_corrupt_encrypted_and_bomb(tmp_path: Path) -> None:
    assert_load_error(write_file(tmp_path, "bad.xlsx", b"PK\x03\x04garbage"), "corrupt XLSX")
    assert_load_error(write_file(tmp_path, "plain.xlsx", b"hello"), "corrupt XLSX")
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64
    assert_load_error(write_file(tmp_path, "locked.xlsx", ole), "encrypted XLSX or legacy .xls")
    bomb = zip_bomb(tmp_path / "bomb.xlsx", member_bytes=8 * 1024 * 1024)
    assert_load_error(bomb, "XLSX part", "compression ratio", "decompression bomb")


def _replace_part(path: Path, part: str, content: bytes) -> Path:
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    parts[part] = content
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    return path


SHEET_XML = (
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<dimension ref="A1"/><sheetData>{rows}</sheetData></worksheet>'
)


def test_xlsx_hostile_sheets(tmp_path: Path) -> None:
    path = make_xlsx(tmp_path / "far.xlsx", {"Data": [["x"]]})
    # One cell a million rows down: the dimension lies, the rows in between are counted.
    far = '<row r="1000000"><c r="A1000000" t="inlineStr"><is><t>far</t></is></c></row>'
    _replace_part(path, "xl/worksheets/sheet1.xml", SHEET_XML.format(rows=far).encode())
    assert_load_error(path, "sheet 'Data' has more than 100000 rows")
    broken = make_xlsx(tmp_path / "broken.xlsx", {"Data": [["x"]]})
    _replace_part(broken, "xl/worksheets/sheet1.xml", b"<worksheet><sheetData><row>")
    assert_load_error(broken, "corrupt XLSX: ParseError")
    cut = SHEET_XML.format(rows='<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>')
    _replace_part(broken, "xl/worksheets/sheet1.xml", cut[:-30].encode())  # cut off mid-rows
    assert_load_error(broken, "corrupt XLSX: sheet 'Data': ParseError")
    laughs = make_xlsx(tmp_path / "laughs.xlsx", {"Data": [["x"]]})
    entity = (
        b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa">]><worksheet>&a;</worksheet>'
    )
    _replace_part(laughs, "xl/worksheets/sheet1.xml", entity)
    assert_load_error(laughs, "corrupt XLSX", "Entit")


def test_xlsx_row_and_cell_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows: list[list[object]] = [["Key", "Value"], *([f"k{n}", n] for n in range(30))]
    path = make_xlsx(tmp_path / "big.xlsx", {"Small": rows[:5], "Big": rows})
    monkeypatch.setattr(sheet_module, "SHEET_MAX_ROWS", 20)
    assert_load_error(path, "sheet 'Big' has more than 20 rows (the limit)")
    monkeypatch.setattr(sheet_module, "SHEET_MAX_ROWS", 100)
    monkeypatch.setattr(sheet_module, "SHEET_MAX_CELLS", 50)  # both sheets together: 72
    assert_load_error(path, "more than 50 cells")


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_sniffs_the_dialect_and_keeps_quoted_fields(tmp_path: Path) -> None:
    text = 'City;Note\r\nLyon;"rainy; mild"\r\n"Oslo";"two\r\nlines"\r\n'
    path = write_file(tmp_path, "cities.csv", b"\xef\xbb\xbf" + text.encode())
    doc = load_document(path)
    assert doc.title == "cities"
    assert [(s.heading_path, s.text) for s in doc.sections] == [
        (("Rows 2–3",), "City: Lyon; Note: rainy; mild\nCity: Oslo; Note: two lines"),
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Name,Dish\nZoë,crème brûlée\n".encode("cp1252"), "Name: Zoë; Dish: crème brûlée"),
        ("Name\tDish\nZoë\tcrème brûlée\n".encode("utf-16"), "Name: Zoë; Dish: crème brûlée"),
        (b"7,8\n9,10\n", "7 | 8\n9 | 10"),
    ],
    ids=["cp1252", "utf16-tabs", "no-header"],
)
def test_csv_encodings_and_headerless_tables(tmp_path: Path, data: bytes, expected: str) -> None:
    doc = load_document(write_file(tmp_path, "menu.csv", data))
    assert [s.text for s in doc.sections] == [expected]


def test_csv_bad_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_load_error(write_file(tmp_path, "bin.csv", bytes(range(256)) * 4), "binary content")
    assert_load_error(write_file(tmp_path, "blank.csv", b" \n\n"), "empty file")
    assert_load_error(write_file(tmp_path, "huge.csv", '"' + "x" * 200_000), "corrupt CSV")
    monkeypatch.setattr(sheet_module, "SHEET_MAX_ROWS", 10)
    rows = "a,b\n" + "".join(f"{n},{n}\n" for n in range(20))
    assert_load_error(write_file(tmp_path, "long.csv", rows), "table has more than 10 rows")
