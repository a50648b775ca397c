"""reStructuredText (``.rst``): sections under their heading paths, text kept as written.

A small adornment scanner instead of docutils: a title is a line underlined, or over- and
underlined, with a repeated punctuation character, and preceded by a blank line or the start
of the file; an underlined-only title starts at the left margin. Levels follow the order in
which adornment styles first appear, as in docutils. Roles, literals and references in titles
are reduced to the text they show. A first title that all others are under is the document's
title (``base.heading_title``), else the file's stem.
"""

from __future__ import annotations

import re
from pathlib import Path

from ingest.loaders.base import TitledSections, decode_utf8_text, heading_title, sections_from_spans

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


def load_rst(path: Path, data: bytes) -> TitledSections:
    """Title and sections of a reStructuredText file."""
    text = decode_utf8_text(path, data)
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
    sections = sections_from_spans(lines, headings)
    return heading_title(sections), sections
