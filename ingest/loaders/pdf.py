"""PDF (``.pdf``): one section per page, with its page number, through pypdfium2 (PDFium).

pypdfium2 was chosen over pypdf: faster, with nearly the same words extracted and fewer stray
control characters. PDFium's soft-hyphen markers become ``-``, NUL and soft-hyphen characters
are dropped, and text with ligatures is NFKC-normalised. The title is the document's ``Title``
metadata, else the first non-blank line of the first page with text. Encrypted files that need
a password and files PDFium cannot open are refused with the reason.
"""

from __future__ import annotations

import threading
import unicodedata
from pathlib import Path

from ingest.loaders.base import TitledSections, strip_blank_edges
from rag.errors import LoaderError
from rag.types import Section

# PDFium is not thread-safe; serialise all calls into it within this process.
_PDFIUM_LOCK = threading.Lock()
_PDF_JUNK = str.maketrans({"\x02": "-", "\ufffe": "-", "\x00": None, "\u00ad": None})


def load_pdf(path: Path, data: bytes) -> TitledSections:
    """Title and per-page sections of a PDF file."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    # Readers accept junk before the header, but a file without one is not a PDF at all.
    if b"%PDF-" not in data[:1024]:
        raise LoaderError(str(path), "corrupt PDF: no %PDF header")
    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            code = getattr(exc, "err_code", None)
            if code == pdfium_c.FPDF_ERR_PASSWORD:
                raise LoaderError(str(path), "encrypted PDF (password protected)") from None
            if code == pdfium_c.FPDF_ERR_SECURITY:
                raise LoaderError(
                    str(path), "encrypted PDF (unsupported security handler)"
                ) from None
            raise LoaderError(str(path), f"corrupt PDF: {exc}") from None
        try:
            meta_title = str(pdf.get_metadata_dict().get("Title") or "")
            sections: list[Section] = []
            for index in range(len(pdf)):
                page = pdf[index]
                try:
                    textpage = page.get_textpage()
                    try:
                        raw = textpage.get_text_range()
                    finally:
                        textpage.close()
                finally:
                    page.close()
                text = _clean_pdf_text(raw)
                if text:
                    sections.append(Section(text=text, page=index + 1))
        except pdfium.PdfiumError as exc:
            raise LoaderError(str(path), f"corrupt PDF: {exc}") from None
        finally:
            pdf.close()
    title = meta_title.strip()
    if not title and sections:
        title = next((ln for ln in sections[0].text.split("\n") if ln.strip()), "")
    return title, sections


def _clean_pdf_text(raw: str) -> str:
    # PDFium ends lines with CRLF and marks soft hyphens with \x02 / U+FFFE.
    text = raw.replace("\r\n", "\n").replace("\r", "\n").translate(_PDF_JUNK)
    text = unicodedata.normalize("NFKC", text) if _has_ligatures(text) else text
    return strip_blank_edges(text)


def _has_ligatures(text: str) -> bool:
    return any("\ufb00" <= ch <= "\ufb06" for ch in text)
