"""Rows of a table (an XLSX sheet, a CSV file) as sections a citation can point into.

The first row with two or more filled cells (within the first few rows) is the header when
none of its cells is a number; single-cell rows above it are captions, kept as text. Every
later row becomes one line ``Header: value; Header: value`` (a cell under an empty header is
named by its column, ``Column C``), so any chunk of rows reads on its own; without a header a
row is its values joined by `` | ``. Blank rows and empty cells are skipped.

Rows are grouped into sections of at most ``SHEET_ROWS_PER_SECTION`` rows and
``SHEET_SECTION_CHARS`` characters (about one chunk, so a chunk's row range stays precise),
each with the heading path ``(sheet name, "Rows 2–51")``; row numbers are the sheet's own (a
CSV's records, counting the header as row 1). A sheet of more than ``SHEET_MAX_ROWS`` rows,
or a file of more than ``SHEET_MAX_CELLS`` cells, is refused with a ``LoaderError`` rather
than truncated: an answer drawn from part of a table would look complete when it is not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path

from rag.errors import LoaderError
from rag.types import Section

SHEET_MAX_ROWS = 100_000
"""Rows read from one sheet (blank rows included), past which the file is refused."""
SHEET_MAX_CELLS = 2_000_000
"""Cells read from one file, all sheets together, past which the file is refused."""
SHEET_ROWS_PER_SECTION = 50
SHEET_SECTION_CHARS = 1_000
# How far down a caption may push the header row.
_HEADER_LOOKAHEAD = 5


class CellBudget:
    """The cells a file may still read (``SHEET_MAX_CELLS``), shared by its sheets."""

    def __init__(self) -> None:
        self.left = SHEET_MAX_CELLS

    def spend(self, path: Path, cells: int) -> None:
        self.left -= cells
        if self.left < 0:
            raise LoaderError(
                str(path), f"more than {SHEET_MAX_CELLS} cells (the limit for one file)"
            )


def table_sections(
    path: Path, rows: Iterable[Sequence[object]], *, sheet: str | None, budget: CellBudget
) -> list[Section]:
    """Sections of one sheet (``sheet`` None for a CSV file: no sheet heading)."""
    where = f"sheet {sheet!r}" if sheet is not None else "table"
    prefix = (sheet,) if sheet is not None else ()
    sections: list[Section] = []
    lines: list[str] = []
    span: list[int] = []  # first and last row number of the open section
    size = 0

    def close() -> None:
        nonlocal size
        if lines:
            first, last = span[0], span[-1]
            label = f"Row {first}" if first == last else f"Rows {first}–{last}"
            sections.append(Section(text="\n".join(lines), heading_path=(*prefix, label)))
        lines.clear()
        span.clear()
        size = 0

    def add(number: int, line: str) -> None:
        nonlocal size
        if lines and (
            len(lines) >= SHEET_ROWS_PER_SECTION or size + len(line) > SHEET_SECTION_CHARS
        ):
            close()
        lines.append(line)
        span.append(number)
        size += len(line) + 1

    header: list[str] | None = None
    header_row = 0
    data_rows = 0
    # Filled rows read until the header is settled; None once it is.
    leading: list[tuple[int, list[object]]] | None = []
    for number, raw in enumerate(rows, 1):
        if number > SHEET_MAX_ROWS:
            raise LoaderError(str(path), f"{where} has more than {SHEET_MAX_ROWS} rows (the limit)")
        budget.spend(path, len(raw))
        row = list(raw)
        if not any(cell_text(v) for v in row):
            continue
        if leading is None:
            add(number, _row_text(row, header))
            data_rows += 1
            continue
        leading.append((number, row))
        if len(leading) < _HEADER_LOOKAHEAD and _filled(row) < 2:
            continue
        header, header_row, captions, data = _settle_header(leading)
        for n, text in captions + data:
            add(n, text)
        data_rows += len(data)
        leading = None
    if leading:  # a table shorter than the lookahead
        header, header_row, captions, data = _settle_header(leading)
        for n, text in captions + data:
            add(n, text)
        data_rows += len(data)
    if header is not None and not data_rows:
        add(header_row, " | ".join(h for h in header if h))  # a header alone still says something
    close()
    return sections


def _settle_header(
    leading: list[tuple[int, list[object]]],
) -> tuple[list[str] | None, int, list[tuple[int, str]], list[tuple[int, str]]]:
    """The header (if any) and its row number, then the numbered lines of the captions and of
    the data rows read before the header was known."""
    at = next((i for i, (_, row) in enumerate(leading) if _filled(row) >= 2), 0)
    number, candidate = leading[at]
    header = [cell_text(v) for v in candidate] if _is_header(candidate) else None
    captions = [(n, _row_text(row, None)) for n, row in leading[:at]]
    start = at + 1 if header is not None else at
    data = [(n, _row_text(row, header)) for n, row in leading[start:]]
    return header, number, captions, data


def _filled(row: Sequence[object]) -> int:
    return sum(1 for v in row if cell_text(v))


def _is_header(row: Sequence[object]) -> bool:
    values = [v for v in row if cell_text(v)]
    return bool(values) and all(isinstance(v, str) and not _is_number(v) for v in values)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def _row_text(row: Sequence[object], header: list[str] | None) -> str:
    if header is None:
        return " | ".join(t for t in map(cell_text, row) if t)
    parts: list[str] = []
    for index, value in enumerate(row):
        text = cell_text(value)
        if text:
            name = header[index] if index < len(header) and header[index] else None
            parts.append(f"{name or 'Column ' + column_letter(index)}: {text}")
    return "; ".join(parts)


def cell_text(value: object) -> str:
    """A cell's value as one line of text, as a spreadsheet shows it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.15g}"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def column_letter(index: int) -> str:
    """Spreadsheet column name of a 0-based index: 0 -> A, 26 -> AA."""
    name = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        name = chr(65 + rem) + name
    return name
