"""Markdown (``.md``, ``.markdown``): sections under their heading paths, text kept as written.

markdown-it-py only finds the headings (ATX and setext, not ``#`` lines inside fenced code);
each section's text is the raw source between headings, so code, tables and lists survive
untouched. YAML front matter is metadata: its ``title`` becomes the document's title and its
lines are not content. Without one, a first heading that all others are under is the title
(``base.heading_title``), else the file's stem.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ingest.loaders.base import TitledSections, decode_utf8_text, heading_title, sections_from_spans

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_MATTER_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_FRONT_MATTER_KEY = re.compile(r"^[A-Za-z_][\w-]*:", re.MULTILINE)


def load_markdown(path: Path, data: bytes) -> TitledSections:
    """Title and sections of a Markdown file."""
    from markdown_it import MarkdownIt

    text = decode_utf8_text(path, data)
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
    sections = sections_from_spans(lines, headings)
    return title or heading_title(sections), sections


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
