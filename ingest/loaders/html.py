"""HTML (``.html``, ``.htm``): the page's main content as sections under its heading paths.

selectolax (lexbor) parses the page and our own structure walker turns it into text: site
chrome and generators' page furniture are removed first and the main content container is
taken when there is one (``html_furniture``), and the walker keeps headings, paragraphs,
preformatted code with its line breaks, lists and table rows. A structure walker was chosen
over plain text extraction and general-purpose extractors because it keeps every code line
and heading and no boilerplate.

The encoding comes from a byte order mark, an XML declaration or a ``<meta charset>``, else
UTF-8; undecodable bytes are replaced rather than refused. The title is the ``<title>``, else
the first heading when all others are under it (``base.heading_title``).
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.loaders.base import (
    SNIFF_BYTES,
    UTF16_BOMS,
    TitledSections,
    enter_heading,
    heading_title,
)
from ingest.loaders.html_furniture import HEADING_TAGS, drop_furniture, main_container
from rag.errors import LoaderError
from rag.types import Section

if TYPE_CHECKING:
    from selectolax.lexbor import LexborHTMLParser, LexborNode

_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE
)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""")
# Per the WHATWG encoding spec, these labels really mean windows-1252 on the web.
_WEB_CP1252 = frozenset({"latin_1", "iso8859-1", "ascii", "cp1252"})

# Block elements end the current paragraph: 2 = blank line, 1 = line break.
_BLOCK_BREAK = {
    **dict.fromkeys(
        (
            "p", "div", "section", "article", "main", "blockquote", "ul", "ol", "dl", "table",
            "figure", "hr", "address", "details", "fieldset", "center", "body", "html",
            "header", "pre", "caption", "figcaption",
        ),
        2,
    ),
    # A table's row groups are lines of one block, so its header row stays the first line of
    # the rows under it.
    **dict.fromkeys(
        ("li", "dt", "dd", "tr", "br", "summary", "option", "legend", "thead", "tbody", "tfoot"),
        1,
    ),
}  # fmt: skip
_CELL_TAGS = frozenset({"td", "th"})
# Phrasing elements hold only inline content in valid HTML, so their text is taken in one C call
# instead of walking each descendant (DocBook pages are full of <code>/<em>/<a>); one that holds
# a <br> is walked, so that the words on either side of it keep their line break.
_INLINE_TAGS = frozenset(
    {
        "a", "abbr", "acronym", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn",
        "em", "font", "i", "ins", "kbd", "label", "mark", "q", "s", "samp", "small", "span",
        "strike", "strong", "sub", "sup", "time", "tt", "u", "var",
    }
)  # fmt: skip
_SKIP_TAGS = frozenset({"head", "title", "meta", "link", "img", "input", "area", "map", "wbr"})


def _is_footnote(node: LexborNode) -> bool:
    """Whether an inline element is an AsciiDoc footnote or a reference to one ("footnote",
    "footnoteref"), which <br>s set on a line of its own in a browser; in running text it
    reads as the bracketed aside it is."""
    classes = (node.attributes.get("class") or "").split()
    return any(c.startswith("footnote") for c in classes)


def decode_html(data: bytes) -> str:
    """HTML bytes as text, in the encoding the page declares (see the module docstring)."""
    for bom, enc in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(enc, errors="replace")
    head = data[:4096]
    m = _XML_ENCODING.match(head) or _META_CHARSET.search(head)
    encoding = "utf-8"
    if m:
        try:
            name = codecs.lookup(m.group(1).decode("ascii")).name
        except (LookupError, UnicodeDecodeError):
            name = "utf-8"
        # A UTF-16/32 label on a document we could sniff as ASCII is a lie (WHATWG: use UTF-8).
        if not name.startswith(("utf-16", "utf-32")):
            encoding = "cp1252" if name in _WEB_CP1252 else name
    return data.decode(encoding, errors="replace")


def load_html(path: Path, data: bytes) -> TitledSections:
    """Title and sections of an HTML page."""
    if not data.startswith(UTF16_BOMS) and b"\x00" in data[:SNIFF_BYTES]:
        raise LoaderError(str(path), "binary content under a text extension")
    html = decode_html(data)
    if not html.strip():
        raise LoaderError(str(path), "empty file (whitespace only)")
    return html_sections(html)


def html_sections(html: str) -> TitledSections:
    """Title and sections of an HTML page already decoded to text (for formats that embed
    HTML: EPUB chapters, e-mail bodies)."""
    from selectolax.lexbor import LexborHTMLParser

    title, sections = _html_extract(LexborHTMLParser(html), drop_toc=True)
    if not sections:
        # Some index pages (DocBook part/chapter pages) are nothing but a table of contents;
        # the TOC is duplicate navigation elsewhere, but here it is the only text there is.
        title, sections = _html_extract(LexborHTMLParser(html), drop_toc=False)
    if not title.strip():
        title = heading_title(sections)
    return title, sections


def _html_extract(tree: LexborHTMLParser, *, drop_toc: bool) -> TitledSections:
    title_node = tree.css_first("title")
    title = title_node.text(deep=True) if title_node is not None else ""
    drop_furniture(tree, drop_toc=drop_toc)
    top = main_container(tree)
    sections = _html_sections(top) if top is not None else []
    if not sections and tree.body is not None and top is not tree.body:
        # The "main" container matched something empty (e.g. a placeholder); use the body.
        sections = _html_sections(tree.body)
    return title, sections


class _HtmlTextBuilder:
    """Accumulates text into sections; whitespace is collapsed when a paragraph is flushed."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.path: tuple[str, ...] = ()
        self.heading_stack: list[tuple[int, str]] = []
        self.pieces: list[str] = []
        self.inline: list[str] = []
        self.pending_break = 0
        self.cell_depth = 0
        self.row_cells = 0
        self.table_width = 0  # the most cells a row of the current table has

    def text(self, s: str) -> None:
        self.inline.append(s)

    def block_break(self, level: int) -> None:
        if self.cell_depth:
            # Inside a table cell blocks are joined inline so a row stays on one line.
            self.inline.append(" ")
            return
        self.flush()
        self.pending_break = max(self.pending_break, level)

    def flush(self) -> None:
        if not self.inline:
            return
        s = " ".join("".join(self.inline).split())
        self.inline.clear()
        if s:
            self.emit(s)

    def emit(self, s: str) -> None:
        if self.pieces:
            self.pieces.append("\n" * self.pending_break if self.pending_break else " ")
        self.pieces.append(s)
        self.pending_break = 0

    def preformatted(self, s: str) -> None:
        if self.cell_depth:
            self.inline.append(s)
            return
        self.flush()
        s = s.strip("\n").rstrip()
        if s.strip():
            self.pending_break = 2
            self.emit(s)
            self.pending_break = 2

    def heading(self, level: int, text: str) -> None:
        text = " ".join(text.split())
        if not text:
            return
        self.flush()
        self.end_section()
        self.path = enter_heading(self.heading_stack, level, text)

    def end_section(self) -> None:
        self.flush()
        body = "".join(self.pieces).strip()
        if body:
            self.sections.append(Section(text=body, heading_path=self.path))
        self.pieces.clear()
        self.pending_break = 0


def _table_width(table: LexborNode) -> int:
    """The most cells a row of ``table`` has (a nested table's rows count too)."""
    return max(
        (sum(c.tag in _CELL_TAGS for c in row.iter()) for row in table.css("tr")),
        default=0,
    )


def _is_column(cell: LexborNode, table_width: int) -> bool:
    """Whether a cell is the only one of its row in a table of one column, and holds no
    table of its own (whose cells would be read as the outer table's)."""
    return table_width == 1 and cell.css_first("table") is None


def _html_sections(top: LexborNode) -> list[Section]:
    out = _HtmlTextBuilder()
    # Iterative walk with explicit end markers: deep documents must not hit the recursion limit,
    # and end events are needed so text after a closed block starts a new paragraph.
    stack: list[tuple[LexborNode, bool]] = [(top, True)]
    while stack:
        node, entering = stack.pop()
        if node.is_text_node:
            out.text(node.text_content or "")
            continue
        if not node.is_element_node:
            continue
        tag = node.tag or ""
        if not entering:
            if tag in _CELL_TAGS and out.cell_depth:
                out.cell_depth -= 1
            elif tag in _CELL_TAGS:  # the cell of a table of one column: a block (below)
                out.block_break(2)
            elif tag == "tr" and not out.cell_depth:
                out.row_cells = 0
                if out.table_width == 1:
                    # A table of one column (a function and its description per row) is a
                    # list of paragraphs: its rows are not lines that one sentence runs over.
                    out.block_break(2)
                    continue
            brk = _BLOCK_BREAK.get(tag)
            if brk:
                out.block_break(brk)
            continue
        if tag in _SKIP_TAGS:
            continue
        level = HEADING_TAGS.get(tag)
        if level is not None:
            if out.cell_depth:
                out.text(" " + node.text(deep=True) + " ")
            else:
                out.heading(level, node.text(deep=True))
            continue
        if tag == "pre":
            out.preformatted(node.text(deep=True))
            continue
        if tag in _INLINE_TAGS and (node.css_first("br") is None or _is_footnote(node)):
            out.text(node.text(deep=True))
            continue
        if tag == "p" and not out.cell_depth and node.css_first("br") is None:
            # HTML parsing closes <p> at any block start tag, so a <p> only holds inline content:
            # take its text in one C call instead of walking every span. A <br> inside needs
            # the walk, or the words on either side of it would run together.
            out.block_break(2)
            out.text(node.text(deep=True))
            out.block_break(2)
            continue
        if tag == "table" and not out.cell_depth:
            out.table_width = _table_width(node)
        elif tag == "tr" and not out.cell_depth:
            out.row_cells = 0
        elif tag in _CELL_TAGS and not out.cell_depth and _is_column(node, out.table_width):
            # A table of one column holds blocks (a function's signatures, then what it
            # does): its cell's paragraphs stay paragraphs, as a label and its text.
            out.block_break(2)
        elif tag in _CELL_TAGS:
            if out.cell_depth == 0 and out.row_cells:
                out.text(" | ")
            out.row_cells += 1
            out.cell_depth += 1
        brk = _BLOCK_BREAK.get(tag)
        if brk:
            out.block_break(brk)
        stack.append((node, False))
        children = list(node.iter(include_text=True))
        children.reverse()
        stack.extend((child, True) for child in children)
    out.end_section()
    return out.sections
