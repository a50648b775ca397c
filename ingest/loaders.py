"""Turn one file on disk into a ``Document``: text split into sections with heading paths or pages.

Libraries chosen by ``bench/bench_loaders.py`` on the Debian docs (150-page samples, 1 CPU):
- HTML: selectolax (lexbor) + our structure walker. pages/s PostgreSQL / Python docs: walker 666 /
  109, lxml walker 256 / 28, bs4 55 / 9, html2text 95 / 12, trafilatura 40 / 6. Only the walkers
  keep 100 % of probe sentences and code lines with ~0 boilerplate per page; selectolax text() is
  3x faster but breaks code (11-47 % kept), html2text keeps 2-44 boilerplate hits/page,
  trafilatura loses headings (37 %). Full corpora: 1,167 PostgreSQL pages 1.9 s, 530 Python 4.3 s.
- PDF: pypdfium2, 322 pages/s vs pypdf 30 on 643 pages of 7 manuals, 99 % word agreement, fewer
  stray control chars (1.6 vs 3.1 per 10k). DOCX: python-docx. Markdown: markdown-it-py finds
  headings (fences, setext); section text is the raw source. reST: small adornment scanner.
"""

from __future__ import annotations

import codecs
import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import LoaderError, UnsupportedFileType
from rag.types import Document, Section

if TYPE_CHECKING:
    from docx.document import Document as DocxDocument
    from docx.table import Table as DocxTable
    from selectolax.lexbor import LexborHTMLParser, LexborNode

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(
    {".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".pdf", ".docx"}
)
# Bump whenever the text or sections produced for a file change, so stored chunks get rebuilt.
LOADER_VERSION: str = "1"

_SNIFF_BYTES = 8192
# Share of control bytes (not tab/newline/CR/FF) above which a "text" file is treated as binary.
_MAX_CONTROL_SHARE = 0.10
_CONTROL_BYTES = frozenset(set(range(32)) - {9, 10, 12, 13} | {127})
_UTF16_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_MAX_TITLE_CHARS = 200


# --------------------------------------------------------------------------------------- entry


def load_document(path: Path, *, source: str | None = None) -> Document:
    """Load one file into a ``Document``; raises ``LoaderError`` with the reason on bad input."""
    path = Path(path)
    ext = path.suffix.lower()
    loader = _LOADERS.get(ext)
    if loader is None:
        reason = (
            f"unsupported file type {ext!r}" if ext else "no file extension"
        ) + f" (supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))})"
        raise UnsupportedFileType(str(path), reason)
    data = _read_bytes(path)
    if not data:
        raise LoaderError(str(path), "empty file (0 bytes)")
    if source is None:
        source = str(path.resolve())
    try:
        title, sections = loader(path, data)
    except LoaderError:
        raise
    except MemoryError:  # a process-level condition, not something wrong with this file
        raise
    except Exception as exc:
        # Safety net: parsers raise a zoo of exception types on malformed input (zip, XML, struct,
        # recursion depth...). Callers must only ever see LoaderError for a file-level problem.
        logger.debug("loader for %s failed", path, exc_info=True)
        raise LoaderError(
            str(path), f"could not parse {ext[1:].upper()} file: {type(exc).__name__}: {exc}"
        ) from exc
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise LoaderError(str(path), "no extractable text")
    title = _clean_title(title) or path.stem
    logger.debug("loaded %s: %d sections, title %r", path, len(sections), title)
    return Document(source=source, title=title, sections=tuple(sections))


_Loaded = tuple[str, list[Section]]


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise LoaderError(str(path), "file not found") from None
    except IsADirectoryError:
        raise LoaderError(str(path), "is a directory, not a file") from None
    except PermissionError:
        raise LoaderError(str(path), "permission denied") from None
    except OSError as exc:
        raise LoaderError(str(path), f"cannot read file: {exc.strerror or exc}") from exc


def _clean_title(title: str | None) -> str:
    if not title:
        return ""
    title = " ".join(title.split())
    return title[:_MAX_TITLE_CHARS].rstrip()


def _looks_binary(data: bytes) -> bool:
    head = data[:_SNIFF_BYTES]
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b in _CONTROL_BYTES)
    return controls > _MAX_CONTROL_SHARE * len(head)


def _decode_utf8_text(path: Path, data: bytes) -> str:
    """Strict UTF-8 decode for the plain-text formats, with the reason spelled out on failure."""
    if data.startswith(_UTF16_BOMS):
        # Checked before the NUL-byte test: UTF-16 text is full of NULs but is not "binary".
        raise LoaderError(str(path), "not valid UTF-8 (UTF-16/32 byte order mark; save as UTF-8)")
    if _looks_binary(data):
        raise LoaderError(str(path), "binary content under a text extension")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoaderError(
            str(path),
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
        ) from None
    if not text.strip():
        raise LoaderError(str(path), "empty file (whitespace only)")
    # Universal newlines so offsets and line-based parsing do not care where the file came from.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _strip_blank_edges(text: str) -> str:
    """Drop leading/trailing blank lines and trailing spaces but keep first-line indentation."""
    lines = [ln.rstrip() for ln in text.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _sections_from_spans(
    lines: list[str], headings: list[tuple[int, int, int, str]]
) -> list[Section]:
    """Cut ``lines`` into sections. ``headings`` = (first_line, end_line, level, text), sorted."""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    cursor = 0
    path: tuple[str, ...] = ()
    for start, end, level, text in headings:
        body = _strip_blank_edges("\n".join(lines[cursor:start]))
        if body:
            sections.append(Section(text=body, heading_path=path))
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, text))
        path = tuple(t for _, t in stack)
        cursor = end
    body = _strip_blank_edges("\n".join(lines[cursor:]))
    if body:
        sections.append(Section(text=body, heading_path=path))
    return sections


# ---------------------------------------------------------------------------------------- text


def _load_text(path: Path, data: bytes) -> _Loaded:
    text = _strip_blank_edges(_decode_utf8_text(path, data))
    return path.stem, [Section(text=text)]


# ------------------------------------------------------------------------------------ markdown

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_MATTER_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_FRONT_MATTER_KEY = re.compile(r"^[A-Za-z_][\w-]*:", re.MULTILINE)


def _load_markdown(path: Path, data: bytes) -> _Loaded:
    from markdown_it import MarkdownIt

    text = _decode_utf8_text(path, data)
    title = ""
    # YAML front matter would otherwise parse as a thematic break plus a setext heading.
    fm = _FRONT_MATTER.match(text)
    if fm and _FRONT_MATTER_KEY.search(fm.group(1)):
        m = _FRONT_MATTER_TITLE.search(fm.group(1))
        if m:
            title = m.group(1).strip("\"'")
        # Keep the line count so token line maps still index into ``lines``.
        text = "\n" * fm.group(0).count("\n") + text[fm.end() :]
    lines = text.split("\n")
    # The parser is only used to find headings reliably (fenced code, setext, lazy lines...);
    # section text is the raw source so code, tables and lists survive untouched.
    tokens = MarkdownIt("commonmark").parse(text)
    headings: list[tuple[int, int, int, str]] = []
    for i, tok in enumerate(tokens):
        if tok.type != "heading_open" or tok.map is None:
            continue
        inline = tokens[i + 1] if i + 1 < len(tokens) else None
        heading = _inline_plain_text(inline.children or []) if inline is not None else ""
        heading = " ".join(heading.split())
        if heading:
            headings.append((tok.map[0], tok.map[1], int(tok.tag[1:]), heading))
    if not title and headings:
        title = headings[0][3]
    return title, _sections_from_spans(lines, headings)


def _inline_plain_text(children: Iterable[object]) -> str:
    parts: list[str] = []
    for child in children:
        kind = getattr(child, "type", "")
        if kind in ("text", "code_inline"):
            parts.append(str(getattr(child, "content", "")))
        elif kind in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif kind == "image":
            parts.append(_inline_plain_text(getattr(child, "children", None) or []))
    return "".join(parts)


# ---------------------------------------------------------------------------------------- reST

# docutils allows any non-alphanumeric printable ASCII character as a section adornment.
_RST_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1+[ \t]*$")
_RST_ROLE = re.compile(r":[\w.+-]+:`([^`]*)`")
_RST_LITERAL = re.compile(r"``([^`]*)``")
_RST_REF = re.compile(r"`([^`<]*?)\s*(?:<[^>]*>)?`_{0,2}")


def _rst_heading_text(raw: str) -> str:
    text = _RST_ROLE.sub(lambda m: _rst_role_label(m.group(1)), raw)
    text = _RST_LITERAL.sub(r"\1", text)
    text = _RST_REF.sub(r"\1", text)
    text = text.replace("\\", "")
    return " ".join(text.split())


def _rst_role_label(content: str) -> str:
    # :role:`label <target>` shows "label"; :role:`~a.b.c` shows "c"; :role:`!x` shows "x".
    m = re.match(r"^(.*?)\s*<[^>]*>$", content)
    if m and m.group(1):
        return m.group(1)
    if content.startswith("~"):
        return content[1:].rsplit(".", 1)[-1]
    return content.lstrip("!")


def _load_rst(path: Path, data: bytes) -> _Loaded:
    text = _decode_utf8_text(path, data)
    lines = text.split("\n")
    headings: list[tuple[int, int, int, str]] = []
    styles: list[tuple[str, bool]] = []  # adornment styles in order of first appearance = levels
    n = len(lines)
    i = 0
    while i < n:
        line = lines[i]
        # Over- and underlined title: adornment, title, same adornment.
        over = _RST_ADORNMENT.match(line)
        if (
            over
            and i + 2 < n
            and lines[i + 1].strip()
            and not _RST_ADORNMENT.match(lines[i + 1])
            and lines[i + 2].rstrip() == line.rstrip()
            and len(line.rstrip()) >= len(lines[i + 1].strip())
            and (i == 0 or not lines[i - 1].strip())
        ):
            style = (over.group(1), True)
            title_raw = lines[i + 1].strip()
            end = i + 3
        elif (
            line.strip()
            and not line[0].isspace()
            and not _RST_ADORNMENT.match(line)
            and i + 1 < n
            and (under := _RST_ADORNMENT.match(lines[i + 1]))
            and len(lines[i + 1].rstrip()) >= min(len(line.rstrip()), 4)
            and (i == 0 or not lines[i - 1].strip())
        ):
            # A title is one unindented line preceded by a blank line (or file start) and
            # underlined; the blank-line rule keeps paragraphs followed by "----" rules out.
            style = (under.group(1), False)
            title_raw = line.strip()
            end = i + 2
        else:
            i += 1
            continue
        if style not in styles:
            styles.append(style)
        heading = _rst_heading_text(title_raw)
        if heading:
            headings.append((i, end, styles.index(style) + 1, heading))
        i = end
    title = headings[0][3] if headings else ""
    return title, _sections_from_spans(lines, headings)


# ---------------------------------------------------------------------------------------- HTML

_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE
)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""")
# Per the WHATWG encoding spec, these labels really mean windows-1252 on the web.
_WEB_CP1252 = frozenset({"latin_1", "iso8859-1", "ascii", "cp1252"})

# Removed before walking: site chrome, not content. Class selectors cover Sphinx and DocBook.
_HTML_DROP_SELECTORS = (
    "script",
    "style",
    "noscript",
    "template",
    "nav",
    "aside",
    "footer",
    "form",
    "button",
    "select",
    "textarea",
    "iframe",
    "object",
    "svg",
    "canvas",
    "dialog",
    "[hidden]",
    "[aria-hidden=true]",
    "[role=navigation]",
    "[role=search]",
    "[role=banner]",
    "[role=contentinfo]",
    "a.headerlink",
    "div.related",
    "div.sphinxsidebar",
    "div.footer",
    "div.navheader",
    "div.navfooter",
    "div.mobile-nav",
    "div.skip-link",
    "#sidebarbutton",
    "p.skip-link",
)
_HTML_DROP_QUERY = ", ".join(_HTML_DROP_SELECTORS)
# Generated tables of contents (DocBook div.toc, Sphinx/docutils "contents" topic) only repeat
# headings found elsewhere; dropped unless they are all a page has.
_HTML_TOC_QUERY = ", div.toc, div.contents.topic, div.toctree-wrapper"
_ADMONITION_HEADINGS = ", ".join(
    f"div.{kind} > {h}"
    for kind in ("note", "tip", "warning", "caution", "important", "admonition")
    for h in ("h1", "h2", "h3", "h4", "h5", "h6")
)
# Tried in order; the first match is taken as the page's main content.
_HTML_MAIN_SELECTORS = (
    "main",
    "[role=main]",
    "div.body",
    "div#docContent",
    "div[itemprop=articleBody]",
    "article",
    "div.document",
    "div#content",
    "div.content",
)
_HEADING_TAGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# Block elements end the current paragraph: 2 = blank line, 1 = line break.
_BLOCK_BREAK = {
    **dict.fromkeys(
        (
            "p", "div", "section", "article", "main", "blockquote", "ul", "ol", "dl", "table",
            "figure", "hr", "address", "details", "fieldset", "center", "body", "html",
            "header", "pre", "thead", "tbody", "tfoot", "caption", "figcaption",
        ),
        2,
    ),
    **dict.fromkeys(("li", "dt", "dd", "tr", "br", "summary", "option", "legend"), 1),
}  # fmt: skip
_CELL_TAGS = frozenset({"td", "th"})
# Phrasing elements hold only inline content in valid HTML, so their text is taken in one C call
# instead of walking each descendant: 2x faster on DocBook pages full of <code>/<em>/<a>.
_INLINE_TAGS = frozenset(
    {
        "a", "abbr", "acronym", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn",
        "em", "font", "i", "ins", "kbd", "label", "mark", "q", "s", "samp", "small", "span",
        "strike", "strong", "sub", "sup", "time", "tt", "u", "var",
    }
)  # fmt: skip
_SKIP_TAGS = frozenset({"head", "title", "meta", "link", "img", "input", "area", "map", "wbr"})


def _decode_html(data: bytes) -> str:
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


def _load_html(path: Path, data: bytes) -> _Loaded:
    from selectolax.lexbor import LexborHTMLParser

    if not data.startswith(_UTF16_BOMS) and b"\x00" in data[:_SNIFF_BYTES]:
        raise LoaderError(str(path), "binary content under a text extension")
    html = _decode_html(data)
    if not html.strip():
        raise LoaderError(str(path), "empty file (whitespace only)")
    title, sections = _html_extract(LexborHTMLParser(html), drop_toc=True)
    if not sections:
        # Some index pages (DocBook part/chapter pages) are nothing but a table of contents;
        # the TOC is duplicate navigation elsewhere, but here it is the only text there is.
        title, sections = _html_extract(LexborHTMLParser(html), drop_toc=False)
    if not title.strip():
        title = next((s.heading_path[0] for s in sections if s.heading_path), "")
    return title, sections


def _html_extract(tree: LexborHTMLParser, *, drop_toc: bool) -> _Loaded:
    title_node = tree.css_first("title")
    title = title_node.text(deep=True) if title_node is not None else ""
    _drop_boilerplate(tree, drop_toc=drop_toc)
    top = _main_container(tree)
    sections = _html_sections(top) if top is not None else []
    if not sections and tree.body is not None and top is not tree.body:
        # The "main" container matched something empty (e.g. a placeholder); use the body.
        sections = _html_sections(tree.body)
    return title, sections


def _drop_boilerplate(tree: LexborHTMLParser, *, drop_toc: bool) -> None:
    # One grouped query (3x faster than one per selector); lexbor returns matches in document
    # order, so destroying them in reverse frees a nested match before its ancestor and no
    # Python handle ever points into an already freed subtree.
    for node in reversed(
        tree.css(_HTML_DROP_QUERY + _HTML_TOC_QUERY if drop_toc else _HTML_DROP_QUERY)
    ):
        node.decompose()
    # Sphinx themes title the sidebar/related blocks "Navigation"; drop stray ones left over.
    for node in reversed(tree.css("h3")):
        if node.text(deep=True).strip() == "Navigation":
            node.decompose()
    # DocBook titles its admonitions with <h3>Tip</h3>; as a heading it would swallow the text
    # that follows the box, so keep it as a plain label instead.
    for node in tree.css(_ADMONITION_HEADINGS):
        node.replace_with(node.text(deep=True))


def _main_container(tree: LexborHTMLParser) -> LexborNode | None:
    for selector in _HTML_MAIN_SELECTORS:
        node = tree.css_first(selector)
        if node is not None:
            return node
    body = tree.body
    if body is not None:
        # Without a main container, a page-level <header> is site chrome (logo, menus).
        for node in reversed(body.css("header")):
            node.decompose()
    return body


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
        while self.heading_stack and self.heading_stack[-1][0] >= level:
            self.heading_stack.pop()
        self.heading_stack.append((level, text))
        self.path = tuple(t for _, t in self.heading_stack)

    def end_section(self) -> None:
        self.flush()
        body = "".join(self.pieces).strip()
        if body:
            self.sections.append(Section(text=body, heading_path=self.path))
        self.pieces.clear()
        self.pending_break = 0


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
            if tag in _CELL_TAGS:
                out.cell_depth -= 1
            elif tag == "tr" and not out.cell_depth:
                out.row_cells = 0
            brk = _BLOCK_BREAK.get(tag)
            if brk:
                out.block_break(brk)
            continue
        if tag in _SKIP_TAGS:
            continue
        level = _HEADING_TAGS.get(tag)
        if level is not None:
            if out.cell_depth:
                out.text(" " + node.text(deep=True) + " ")
            else:
                out.heading(level, node.text(deep=True))
            continue
        if tag == "pre":
            out.preformatted(node.text(deep=True))
            continue
        if tag in _INLINE_TAGS:
            out.text(node.text(deep=True))
            continue
        if tag == "p" and not out.cell_depth:
            # HTML parsing closes <p> at any block start tag, so a <p> only holds inline content:
            # take its text in one C call instead of walking every span.
            out.block_break(2)
            out.text(node.text(deep=True))
            out.block_break(2)
            continue
        if tag == "tr" and not out.cell_depth:
            out.row_cells = 0
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


# ----------------------------------------------------------------------------------------- PDF

# PDFium is not thread-safe; serialise all calls into it within this process.
_PDFIUM_LOCK = threading.Lock()
_PDF_JUNK = str.maketrans({"\x02": "-", "\ufffe": "-", "\x00": None, "\u00ad": None})


def _load_pdf(path: Path, data: bytes) -> _Loaded:
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
    return _strip_blank_edges(text)


def _has_ligatures(text: str) -> bool:
    return any("\ufb00" <= ch <= "\ufb06" for ch in text)


# ---------------------------------------------------------------------------------------- DOCX

_DOCX_HEADING = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _load_docx(path: Path, data: bytes) -> _Loaded:
    import io
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    if data.startswith(_OLE_MAGIC):
        # Password-protected DOCX files are wrapped in an OLE container, as are legacy .doc files.
        raise LoaderError(str(path), "encrypted DOCX or legacy .doc file (OLE container)")
    if not data.startswith(b"PK"):
        raise LoaderError(str(path), "corrupt DOCX: not a ZIP package")
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoaderError(str(path), f"corrupt DOCX: {exc}") from None

    title = ""
    try:
        title = (document.core_properties.title or "").strip()
    except (ValueError, KeyError):  # malformed core.xml must not sink the body text
        title = ""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    path_: tuple[str, ...] = ()
    blocks: list[str] = []
    first_heading = ""
    style_title = ""

    def close_section() -> None:
        body = "\n\n".join(blocks).strip()
        if body:
            sections.append(Section(text=body, heading_path=path_))
        blocks.clear()

    for item in _docx_blocks(document):
        if isinstance(item, str):
            blocks.append(item)
            continue
        style, text = item
        m = _DOCX_HEADING.match(style)
        if m and text:
            level = int(m.group(1))
            close_section()
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text))
            path_ = tuple(t for _, t in stack)
            first_heading = first_heading or text
        elif style.lower() == "title" and text and not style_title:
            style_title = text
        elif text:
            blocks.append(text)
    close_section()
    return title or style_title or first_heading, sections


def _docx_blocks(document: DocxDocument) -> Iterator[str | tuple[str, str]]:
    """Body in reading order: (style name, text) for paragraphs, plain text for tables."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            style = block.style.name if block.style is not None else ""
            yield (style or "", block.text.strip())
        elif isinstance(block, Table):
            rows = list(_docx_table_rows(block))
            if rows:
                yield "\n".join(rows)


def _docx_table_rows(table: DocxTable) -> Iterator[str]:
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            # Merged cells come back once per grid column; report each underlying cell once.
            key = id(cell._tc)
            if key in seen:
                continue
            seen.add(key)
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            yield " | ".join(cells)


# ------------------------------------------------------------------------------------ dispatch

_LOADERS: dict[str, Callable[[Path, bytes], _Loaded]] = {
    ".txt": _load_text,
    ".md": _load_markdown,
    ".markdown": _load_markdown,
    ".rst": _load_rst,
    ".html": _load_html,
    ".htm": _load_html,
    ".pdf": _load_pdf,
    ".docx": _load_docx,
}
