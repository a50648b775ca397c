"""EPUB (``.epub``): the spine's documents in reading order, each under its chapter's title.

The package is read with ``zipfile``, its XML (container, package document, NCX) with
defusedxml (``base.parse_xml``), and each XHTML document with the HTML loader's extractor
(``html.html_sections``), so chapters keep the same headings, paragraphs, code and tables an
HTML page does. A library such as ebooklib was not taken: it adds a copyleft dependency and an
unguarded XML parser for what is a container file and a list. A chapter's title is its
table-of-contents label (EPUB 3 navigation document, else the EPUB 2 NCX); it heads the
heading path of the chapter's sections unless the chapter's own first heading already says
it. A document listed several times in the contents (one file holding many chapters) keeps
its own headings only. The title is the book's ``dc:title``, else the first chapter's.

Refused with the reason: a package over the ZIP limits (``base.check_zip_limits``), another
``mimetype``, a missing container or package document, and DRM-encrypted content (listed in
``META-INF/encryption.xml``; font obfuscation alone is not encryption of the text).
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from ingest.loaders.base import TitledSections, check_mimetype, check_zip_package, parse_xml
from ingest.loaders.html import decode_html, html_sections
from rag.errors import LoaderError
from rag.types import Section

if TYPE_CHECKING:
    import zipfile
    from xml.etree.ElementTree import Element

logger = logging.getLogger(__name__)

_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_NCX = "{http://www.daisy.org/z3986/2005/ncx/}"
_XMLENC = "{http://www.w3.org/2001/04/xmlenc#}"
_DOCUMENT_TYPES = frozenset({"application/xhtml+xml", "text/html"})
# Font obfuscation scrambles embedded fonts only; the text is as readable as without it.
_FONT_OBFUSCATION = frozenset(
    {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
)
# XHTML's <a id="p5"/> is an open tag to an HTML parser, which would then swallow the rest of
# the block (headings included) into an inline element; written out as <a id="p5"></a>.
_SELF_CLOSING = re.compile(r"<([A-Za-z][\w:.-]*)(\s[^<>]*?)?\s*/>")
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
     "source", "track", "wbr"}
)  # fmt: skip


class _Item:
    __slots__ = ("href", "media_type", "properties")

    def __init__(self, href: str, media_type: str, properties: str) -> None:
        self.href, self.media_type, self.properties = href, media_type, properties


def load_epub(path: Path, data: bytes) -> TitledSections:
    """Title and chapter sections of an EPUB book."""
    import io
    import zipfile

    check_zip_package(path, data, "EPUB")
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        names = set(package.namelist())
        check_mimetype(path, package, {"application/epub+zip"}, "an EPUB")
        if "META-INF/container.xml" not in names:
            raise LoaderError(str(path), "corrupt EPUB: no META-INF/container.xml")
        container = parse_xml(path, package.read("META-INF/container.xml"), "EPUB", "container")
        rootfile = container.find(f".//{_CONTAINER}rootfile")
        opf_path = rootfile.get("full-path", "") if rootfile is not None else ""
        if opf_path not in names:
            raise LoaderError(str(path), "corrupt EPUB: its package document is missing")
        opf = parse_xml(path, package.read(opf_path), "EPUB", opf_path)
        base = posixpath.dirname(opf_path)
        manifest = {
            item.get("id", ""): _Item(
                _resolve(base, item.get("href", "")),
                item.get("media-type", ""),
                item.get("properties", ""),
            )
            for item in opf.iterfind(f"{_OPF}manifest/{_OPF}item")
        }
        spine = opf.find(f"{_OPF}spine")
        if spine is None:
            raise LoaderError(str(path), "corrupt EPUB: the package document has no spine")
        encrypted = _encrypted_parts(path, package, names)
        chapters = _chapter_titles(path, package, names, manifest, spine)
        sections: list[Section] = []
        first_chapter = ""
        for ref in spine.iterfind(f"{_OPF}itemref"):
            item = manifest.get(ref.get("idref", ""))
            if item is None or item.media_type not in _DOCUMENT_TYPES:
                continue
            if item.href in encrypted:
                raise LoaderError(str(path), "encrypted EPUB (DRM-protected content)")
            if item.href not in names:
                logger.warning("%s: EPUB document %r is missing; skipped", path, item.href)
                continue
            chapter = chapters.get(item.href, "")
            found = _chapter_sections(package.read(item.href), chapter)
            if found:
                first_chapter = (
                    first_chapter
                    or chapter
                    or next((s.heading_path[0] for s in found if s.heading_path), "")
                )
            sections += found
    title = " ".join((opf.findtext(f"{_OPF}metadata/{_DC}title") or "").split())
    return title or first_chapter, sections


def _chapter_sections(xhtml: bytes, chapter: str) -> list[Section]:
    html = _SELF_CLOSING.sub(_open_close, decode_html(xhtml))
    _, found = html_sections(html)
    if not chapter:
        return found
    out = []
    for section in found:
        heading_path = section.heading_path
        if heading_path and _says(chapter, heading_path[0]):
            heading_path = heading_path[1:]
        out.append(Section(text=section.text, heading_path=(chapter, *heading_path)))
    return out


def _open_close(match: re.Match[str]) -> str:
    tag = match.group(1)
    if tag.lower() in _VOID:
        return match.group(0)
    return f"<{tag}{match.group(2) or ''}></{tag}>"


def _says(chapter: str, heading: str) -> bool:
    """The chapter label and the chapter's first heading name the same thing ("Chapter 1: The
    Storm" and "The Storm"): one of them is kept, the label."""
    a, b = chapter.casefold(), heading.casefold()
    short, long = sorted((a, b), key=len)
    return a == b or (len(short) >= 4 and short in long)


def _resolve(base: str, href: str) -> str:
    """A package path from an href relative to ``base`` (fragment dropped, %-escapes decoded)."""
    if "://" in href:
        return ""
    return posixpath.normpath(posixpath.join(base, unquote(href.split("#", 1)[0])))


def _encrypted_parts(path: Path, package: zipfile.ZipFile, names: set[str]) -> set[str]:
    if "META-INF/encryption.xml" not in names:
        return set()
    root = parse_xml(path, package.read("META-INF/encryption.xml"), "EPUB", "encryption.xml")
    parts = set()
    for data in root.iter(f"{_XMLENC}EncryptedData"):
        method = data.find(f"{_XMLENC}EncryptionMethod")
        if method is not None and method.get("Algorithm", "") in _FONT_OBFUSCATION:
            continue
        reference = data.find(f"{_XMLENC}CipherData/{_XMLENC}CipherReference")
        if reference is not None:
            parts.add(_resolve("", reference.get("URI", "")))
    return parts


def _chapter_titles(
    path: Path,
    package: zipfile.ZipFile,
    names: set[str],
    manifest: dict[str, _Item],
    spine: Element,
) -> dict[str, str]:
    """Document path -> its chapter's label, from the contents: the entry pointing at the
    document itself, else its only entry; none for a document with several entries only."""
    entries: list[tuple[str, str]] = []  # (label, href with fragment) in contents order
    nav = next((i for i in manifest.values() if "nav" in i.properties.split()), None)
    if nav is not None and nav.href in names:
        entries = _nav_entries(package.read(nav.href), posixpath.dirname(nav.href))
    ncx = manifest.get(spine.get("toc", ""))
    if not entries and ncx is not None and ncx.href in names:
        root = parse_xml(path, package.read(ncx.href), "EPUB", ncx.href)
        base = posixpath.dirname(ncx.href)
        for point in root.iter(f"{_NCX}navPoint"):
            label = " ".join((point.findtext(f"{_NCX}navLabel/{_NCX}text") or "").split())
            content = point.find(f"{_NCX}content")
            if label and content is not None:
                entries.append((label, _join(base, content.get("src", ""))))
    whole: dict[str, str] = {}
    parts: dict[str, list[str]] = {}
    for label, href in entries:
        document, _, fragment = href.partition("#")
        if fragment:
            parts.setdefault(document, []).append(label)
        else:
            whole.setdefault(document, label)
    for document, labels in parts.items():
        if document not in whole and len(labels) == 1:
            whole[document] = labels[0]
    return whole


def _nav_entries(xhtml: bytes, base: str) -> list[tuple[str, str]]:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(decode_html(xhtml))
    navs = tree.css("nav")
    toc = next((n for n in navs if "toc" in (n.attributes.get("epub:type") or "").split()), None)
    if toc is None and navs:
        toc = navs[0]
    if toc is None:
        return []
    entries = []
    for link in toc.css("a[href]"):
        label = " ".join(link.text(deep=True).split())
        if label:
            entries.append((label, _join(base, link.attributes.get("href") or "")))
    return entries


def _join(base: str, href: str) -> str:
    """``_resolve`` that keeps the fragment."""
    document, sep, fragment = href.partition("#")
    resolved = _resolve(base, document) if document else ""
    return f"{resolved}{sep}{fragment}" if resolved else ""
