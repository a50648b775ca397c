"""Excel workbooks (``.xlsx``): every worksheet's rows as text under ``(sheet, "Rows a–b")``.

openpyxl reads the workbook in read-only mode (rows are streamed, never held as a grid) with
cached values (``data_only``): a formula counts as the value Excel last computed, and one
never computed (a file written by a library, not Excel) as empty. The sheet's declared
dimensions are ignored, since writers get them wrong and openpyxl would cut rows off by them.
Rows become sections as ``sheet.table_sections`` says, under its row and cell limits. The
title is the workbook's title property. Password-protected workbooks and legacy ``.xls``
files (OLE containers) are refused with the reason, and so is a package over the ZIP limits
(``base.check_zip_limits``). openpyxl parses XML through defusedxml when it is installed.
"""

from __future__ import annotations

from pathlib import Path

from ingest.loaders.base import TitledSections, check_zip_package
from ingest.loaders.sheet import CellBudget, table_sections
from rag.errors import LoaderError
from rag.types import Section


def load_xlsx(path: Path, data: bytes) -> TitledSections:
    """Title and per-sheet row sections of an XLSX workbook."""
    import io
    import zipfile

    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    check_zip_package(
        path, data, "XLSX", ole_reason="encrypted XLSX or legacy .xls file (OLE container)"
    )
    try:
        workbook = openpyxl.load_workbook(
            io.BytesIO(data), read_only=True, data_only=True, keep_links=False
        )
    except (
        InvalidFileException,
        zipfile.BadZipFile,
        KeyError,
        ValueError,
        TypeError,
        SyntaxError,  # xml.etree's ParseError
    ) as exc:
        # openpyxl may wrap a part's XML error in a ValueError of several lines; its cause says it.
        cause = exc.__cause__ or exc
        reason = " ".join(str(cause).split())
        raise LoaderError(str(path), f"corrupt XLSX: {type(cause).__name__}: {reason}") from None
    try:
        title = (workbook.properties.title or "").strip() if workbook.properties else ""
        budget = CellBudget()
        sections: list[Section] = []
        for name in workbook.sheetnames:
            try:
                sheet = workbook[name]  # a worksheet's XML is first read here
                if not hasattr(sheet, "iter_rows"):
                    continue  # a chart sheet
                sheet.reset_dimensions()
                rows = sheet.iter_rows(values_only=True)
                sections += table_sections(path, rows, sheet=name, budget=budget)
            except LoaderError:
                raise
            except (KeyError, ValueError, TypeError, SyntaxError) as exc:
                # xml.etree's ParseError is a SyntaxError; defusedxml's refusals are ValueErrors.
                raise LoaderError(
                    str(path), f"corrupt XLSX: sheet {name!r}: {type(exc).__name__}: {exc}"
                ) from None
    finally:
        workbook.close()
    return title, sections
