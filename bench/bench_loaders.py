"""Compare HTML and PDF text extractors on real documentation; prints tables, asserts nothing.

    python bench/bench_loaders.py [DOCS_DIR] [--limit N] [--only NAME,...]

DOCS_DIR defaults to $RAG_BENCH_DOCS or /tmp/docs (fill it with
``bash /work/shared/corpora/fetch-debian-docs.sh /tmp/docs``). Each subfolder with HTML pages is
a corpus (python-3.11 = Sphinx, postgresql-15 = DocBook). PDFs are taken from DOCS_DIR and from
/usr/share/doc (``*.pdf`` and ``*.pdf.gz``).

HTML columns: pages/s; total chars; "boiler/pg" = boilerplate strings left per page (navigation
labels, "¶" anchors, copyright lines, ...); "body%" = share of pages whose probe sentence (a
paragraph from the page's main content) is kept; "code%" = share of pages whose probe code line
(a line from a <pre> block) is kept as its own line; "head%" = share of pages whose first <h2>
text is kept. PDF columns: pages/s, chars, "odd/10k" = control, private-use, replacement or
ligature characters per 10k chars, "agree%" = share of the other extractor's words also found.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.loaders import _load_html, _load_pdf

Extractor = Callable[[Path, bytes], str]

BOILERPLATE = {
    "Navigation": re.compile(r"\bNavigation\b"),
    "Previous topic": re.compile(r"Previous topic"),
    "Next topic": re.compile(r"Next topic"),
    "This Page": re.compile(r"This Page\b"),
    "Show Source": re.compile(r"Show Source"),
    "Report a Bug": re.compile(r"Report a Bug|Found a bug"),
    "Quick search": re.compile(r"Quick search"),
    "Table of Contents": re.compile(r"Table of Contents"),
    "¶": re.compile("¶"),
    "copyright": re.compile(r"©|Copyright \d{4}|Copyright</a>|Python Software Foundation\."),
    "Prev/Up/Home": re.compile(r"\bPrev\b|\bUp\b\s+\bHome\b"),
}


# ----------------------------------------------------------------------------- HTML candidates

_DROP = (
    "script, style, noscript, template, nav, aside, footer, form, header, div.related, "
    "div.sphinxsidebar, div.footer, div.navheader, div.navfooter, a.headerlink"
)
_MAIN = ("main", "[role=main]", "div.body", "#docContent")
_BLOCK = frozenset(
    {
        "p", "div", "section", "article", "main", "blockquote", "ul", "ol", "dl", "dt", "dd",
        "li", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "hr", "figure",
        "figcaption", "body", "caption", "details", "summary", "address",
    }
)  # fmt: skip


def html_loader(path: Path, data: bytes) -> str:
    """What ingest.loaders ships: selectolax (lexbor) + structure walker with heading paths."""
    _title, sections = _load_html(path, data)
    # Headings live in heading_path, not in the text; put them back so "head%" compares fairly.
    parts: list[str] = []
    last: tuple[str, ...] = ()
    for s in sections:
        if s.heading_path != last:
            common = 0
            while common < min(len(last), len(s.heading_path)) and (
                last[common] == s.heading_path[common]
            ):
                common += 1
            parts.extend(s.heading_path[common:])
            last = s.heading_path
        parts.append(s.text)
    return "\n\n".join(parts)


def html_selectolax_text(path: Path, data: bytes) -> str:
    """selectolax with the same cleaning but its built-in text(): fastest, loses paragraphs."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(data)
    for node in reversed(tree.css(_DROP)):
        node.decompose()
    top = next((n for s in _MAIN if (n := tree.css_first(s)) is not None), tree.body)
    return top.text(deep=True, separator="\n") if top is not None else ""


def html_lxml_walker(path: Path, data: bytes) -> str:
    """lxml.html + iterwalk with the same cleaning and paragraph rules as the shipped walker."""
    from lxml import etree, html  # type: ignore[import-untyped]

    root = html.document_fromstring(data)
    drop = (
        "//script|//style|//noscript|//template|//nav|//aside|//footer|//form|//header"
        + "".join(
            f"|//*[contains(concat(' ',normalize-space(@class),' '),' {c} ')]"
            for c in ("related", "sphinxsidebar", "footer", "navheader", "navfooter", "headerlink")
        )
    )
    for el in root.xpath(drop):
        if el.getparent() is not None:
            el.drop_tree()
    found = root.xpath("//main|//*[@role='main']|//div[@class='body']|//*[@id='docContent']")
    top = found[0] if found else root.body
    out: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        s = " ".join("".join(buf).split())
        buf.clear()
        if s:
            out.append(s)

    skip_until: Any = None
    for event, el in etree.iterwalk(top, events=("start", "end")):
        tag = el.tag if isinstance(el.tag, str) else ""
        if skip_until is not None:
            if event == "end" and el is skip_until:
                skip_until = None
                if el.tail:
                    buf.append(el.tail)
            continue
        if event == "start":
            if tag in _BLOCK:
                flush()
            if tag == "pre":
                out.append(el.text_content().strip("\n"))
                skip_until = el
                continue
            if el.text:
                buf.append(el.text)
        else:
            if tag in _BLOCK:
                flush()
            if el.tail:
                buf.append(el.tail)
    flush()
    return "\n\n".join(out)


def html_bs4(path: Path, data: bytes) -> str:
    """BeautifulSoup (lxml tree builder), same cleaning, get_text with newlines."""
    import warnings

    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    # DocBook pages start with an XML declaration; they are still HTML to a browser.
    warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)
    soup = BeautifulSoup(data, "lxml")
    for node in soup.select(_DROP):
        node.decompose()
    top = next((n for s in _MAIN if (n := soup.select_one(s)) is not None), soup.body)
    text = top.get_text("\n") if top is not None else ""
    return re.sub(r"\n\s*\n+", "\n\n", text)


def html_trafilatura(path: Path, data: bytes) -> str:
    """trafilatura main-content extraction (boilerplate removal by heuristics, no selectors)."""
    import trafilatura

    return trafilatura.extract(data, include_tables=True, include_formatting=False) or ""


def html_html2text(path: Path, data: bytes) -> str:
    """html2text on the raw page (Markdown-ish output, no cleaning)."""
    import html2text

    conv = html2text.HTML2Text()
    conv.body_width = 0
    conv.ignore_links = True
    conv.ignore_images = True
    return conv.handle(data.decode("utf-8", errors="replace"))


HTML_EXTRACTORS: dict[str, Extractor] = {
    "loader (selectolax walker)": html_loader,
    "selectolax text()": html_selectolax_text,
    "lxml walker": html_lxml_walker,
    "bs4+lxml get_text": html_bs4,
    "trafilatura": html_trafilatura,
    "html2text": html_html2text,
}


# ------------------------------------------------------------------------------ HTML probing


@dataclass
class Probe:
    sentence: str | None
    code_line: str | None
    heading: str | None


def make_probe(data: bytes) -> Probe:
    """Pick ground-truth snippets from the page's main content (independent of any extractor)."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(data)
    top = next((n for s in _MAIN if (n := tree.css_first(s)) is not None), tree.body)
    if top is None:
        return Probe(None, None, None)
    paras = [" ".join(p.text(deep=True).split()) for p in top.css("p")]
    paras = [p for p in paras if len(p) >= 80]
    sentence = paras[len(paras) // 2][:70] if paras else None
    code_line = None
    for pre in top.css("pre"):
        lines = [ln.strip() for ln in pre.text(deep=True).split("\n") if len(ln.strip()) >= 12]
        if lines:
            code_line = lines[0]
            break
    h2 = top.css_first("h2")
    heading = None
    if h2 is not None:
        for a in h2.css("a.headerlink"):
            a.decompose()
        heading = " ".join(h2.text(deep=True).split()) or None
    return Probe(sentence, code_line, heading)


def _norm(text: str) -> str:
    return " ".join(text.split())


@dataclass
class Score:
    seconds: float = 0.0
    pages: int = 0
    chars: int = 0
    boiler_hits: int = 0
    body_total: int = 0
    body_kept: int = 0
    code_total: int = 0
    code_kept: int = 0
    head_total: int = 0
    head_kept: int = 0
    errors: int = 0


def bench_html(corpus: str, files: list[Path], only: set[str] | None) -> None:
    datas = [(f, f.read_bytes()) for f in files]
    probes = [make_probe(d) for _, d in datas]
    print(f"\n## HTML: {corpus} ({len(datas)} pages)")
    header = (
        f"{'extractor':28} {'pages/s':>8} {'chars':>11} {'boiler/pg':>9} "
        f"{'body%':>6} {'code%':>6} {'head%':>6} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, fn in HTML_EXTRACTORS.items():
        if only and not any(o.lower() in name.lower() for o in only):
            continue
        sc = Score()
        texts: list[str] = []
        t0 = time.perf_counter()
        for path, data in datas:
            try:
                texts.append(fn(path, data))
            except Exception:  # a candidate failing on a page is a result, not a crash
                sc.errors += 1
                texts.append("")
        sc.seconds = time.perf_counter() - t0
        sc.pages = len(datas)
        for text, probe in zip(texts, probes, strict=True):
            sc.chars += len(text)
            sc.boiler_hits += sum(len(p.findall(text)) for p in BOILERPLATE.values())
            flat = _norm(text)
            if probe.sentence:
                sc.body_total += 1
                sc.body_kept += probe.sentence in flat
            if probe.code_line:
                sc.code_total += 1
                lines = {ln.strip() for ln in text.split("\n")}
                sc.code_kept += probe.code_line in lines
            if probe.heading:
                sc.head_total += 1
                sc.head_kept += probe.heading in flat
        print(
            f"{name:28} {sc.pages / sc.seconds:8.1f} {sc.chars:11,d} "
            f"{sc.boiler_hits / max(sc.pages, 1):9.2f} {_pct(sc.body_kept, sc.body_total):>6} "
            f"{_pct(sc.code_kept, sc.code_total):>6} {_pct(sc.head_kept, sc.head_total):>6} "
            f"{sc.errors:6d}"
        )


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.0f}" if total else "-"


# ------------------------------------------------------------------------------- PDF candidates


def pdf_loader(path: Path, data: bytes) -> str:
    """What ingest.loaders ships: pypdfium2, one section per page."""
    _title, sections = _load_pdf(path, data)
    return "\n\n".join(s.text for s in sections)


def pdf_pypdf(path: Path, data: bytes) -> str:
    import io

    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n\n".join(page.extract_text() or "" for page in reader.pages)


PDF_EXTRACTORS: dict[str, Extractor] = {
    "loader (pypdfium2)": pdf_loader,
    "pypdf extract_text": pdf_pypdf,
}
_ODD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ue000-\uf8ff\ufffd\ufffe\ufb00-\ufb06]")
_WORD = re.compile(r"\w{3,}")


def find_pdfs(docs: Path) -> list[tuple[Path, bytes]]:
    found: dict[str, tuple[Path, bytes]] = {}
    for root in (docs, Path("/usr/share/doc")):
        if not root.is_dir():
            continue
        for p in sorted(root.rglob("*.pdf")) + sorted(root.rglob("*.pdf.gz")):
            name = p.name.removesuffix(".gz")
            if name in found:
                continue
            try:
                data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
            except (OSError, EOFError):
                continue
            found[name] = (Path(name), data)
    return list(found.values())


def bench_pdf(pdfs: list[tuple[Path, bytes]]) -> None:
    import pypdfium2 as pdfium

    pages = sum(len(pdfium.PdfDocument(d)) for _, d in pdfs)
    print(f"\n## PDF: {len(pdfs)} files, {pages} pages ({', '.join(p.name for p, _ in pdfs)})")
    header = f"{'extractor':28} {'pages/s':>8} {'chars':>11} {'odd/10k':>8} {'agree%':>7}"
    print(header)
    print("-" * len(header))
    outputs: dict[str, list[str]] = {}
    timings: dict[str, float] = {}
    for name, fn in PDF_EXTRACTORS.items():
        t0 = time.perf_counter()
        outputs[name] = [fn(path, data) for path, data in pdfs]
        timings[name] = time.perf_counter() - t0
    names = list(outputs)
    for name in names:
        text = "\n".join(outputs[name])
        other = next(n for n in names if n != name)
        mine = set(_WORD.findall(text))
        theirs = set(_WORD.findall("\n".join(outputs[other])))
        agree = 100 * len(mine & theirs) / max(len(theirs), 1)
        odd = 10_000 * len(_ODD.findall(text)) / max(len(text), 1)
        print(f"{name:28} {pages / timings[name]:8.1f} {len(text):11,d} {odd:8.2f} {agree:7.1f}")


# -------------------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("docs", nargs="?", default=os.environ.get("RAG_BENCH_DOCS", "/tmp/docs"))
    ap.add_argument("--limit", type=int, default=150, help="pages per corpus (0 = all)")
    ap.add_argument("--only", default="", help="comma-separated extractor name fragments")
    args = ap.parse_args()
    docs = Path(args.docs)
    if not docs.is_dir():
        print(f"{docs} not found; run: bash /work/shared/corpora/fetch-debian-docs.sh {docs}")
        return 2
    only = {o.strip() for o in args.only.split(",") if o.strip()} or None
    for corpus in sorted(p for p in docs.iterdir() if p.is_dir()):
        files = sorted(p for p in corpus.rglob("*.htm*") if p.is_file())
        if not files:
            continue
        if args.limit and len(files) > args.limit:
            # Evenly spaced sample so every part of the manual is represented.
            step = len(files) / args.limit
            files = [files[int(i * step)] for i in range(args.limit)]
        bench_html(corpus.name, files, only)
    pdfs = find_pdfs(docs)
    if pdfs:
        bench_pdf(pdfs)
    else:
        print("\n(no PDFs found for the PDF comparison)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
