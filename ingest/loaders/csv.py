"""CSV (``.csv``): the rows as text under ``("Rows a–b",)``, as ``sheet.table_sections`` says.

The encoding is UTF-8 (a byte order mark is dropped), UTF-16/32 with a byte order mark, and
otherwise Windows-1252, which is what spreadsheet programs on Windows write; the dialect
(delimiter and quoting) is sniffed from the start of the file, falling back to Excel's
comma-separated one. Binary content is refused, and so is a table over the row and cell
limits of ``sheet``. The title is the file's stem.
"""

from __future__ import annotations

import codecs
import logging
from pathlib import Path

from ingest.loaders.base import SNIFF_BYTES, TitledSections, looks_binary
from ingest.loaders.sheet import CellBudget, table_sections
from rag.errors import LoaderError

logger = logging.getLogger(__name__)

_DELIMITERS = ",;\t|"
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def load_csv(path: Path, data: bytes) -> TitledSections:
    """Row sections of a CSV file (the title is left to the file's stem)."""
    import csv
    import io

    text = _decode_csv(path, data)
    if not text.strip():
        raise LoaderError(str(path), "empty file (whitespace only)")
    sample = text[:SNIFF_BYTES]
    if len(text) > SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only, or the sniffer guesses wrong
    dialect: type[csv.Dialect] | csv.Dialect
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
    except csv.Error:  # one column, or no consistent delimiter
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        return "", table_sections(path, reader, sheet=None, budget=CellBudget())
    except csv.Error as exc:
        raise LoaderError(str(path), f"corrupt CSV at line {reader.line_num}: {exc}") from None


def _decode_csv(path: Path, data: bytes) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if looks_binary(data):
        raise LoaderError(str(path), "binary content under a text extension")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        logger.debug("%s is not UTF-8; read as Windows-1252", path)
        return data.decode("cp1252", errors="replace")
