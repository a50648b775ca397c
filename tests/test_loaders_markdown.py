"""Markdown loader: heading paths (ATX, setext, not inside fences) and front matter."""

from __future__ import annotations

from pathlib import Path

from ingest.loaders import load_document
from tests.documents import write_file

MARKDOWN = """\
---
layout: page
---
Intro paragraph before any heading.

# Install Guide

Install text.

```bash
# this is a shell comment, not a heading
pip install thing
```

Setext Section
--------------

Setext body.

### Deep *Dive*

Deep body.

## Usage

Usage body.

# Appendix

Appendix body.
"""


def test_markdown_heading_paths_fences_and_setext(tmp_path: Path) -> None:
    doc = load_document(write_file(tmp_path, "guide.md", MARKDOWN))
    assert doc.title == "guide"  # two top-level headings: neither titles the other's sections
    paths = [s.heading_path for s in doc.sections]
    assert paths == [
        (),
        ("Install Guide",),
        ("Install Guide", "Setext Section"),
        ("Install Guide", "Setext Section", "Deep Dive"),
        ("Install Guide", "Usage"),
        ("Appendix",),
    ]
    by_path = {s.heading_path: s.text for s in doc.sections}
    assert by_path[()] == "Intro paragraph before any heading."
    install = by_path[("Install Guide",)]
    assert "# this is a shell comment, not a heading\npip install thing" in install
    assert by_path[("Install Guide", "Setext Section")] == "Setext body."
    assert "layout: page" not in doc.text  # front matter is metadata, not content


def test_markdown_front_matter_title(tmp_path: Path) -> None:
    text = '---\ntitle: "My Page"\n---\n\n# Heading\n\nBody.\n'
    doc = load_document(write_file(tmp_path, "page.markdown", text))
    assert doc.title == "My Page"
    assert doc.sections[0].heading_path == ("Heading",)


def test_markdown_title_is_a_first_heading_that_all_others_are_under(tmp_path: Path) -> None:
    readme = "Badges.\n\n# Widget\n\nWhat it is.\n\n## Install\n\nSteps.\n\n## Usage\n\nRun.\n"
    assert load_document(write_file(tmp_path, "README.md", readme)).title == "Widget"
    # No heading above the others: the file's name stands in, not "Install".
    notes = "## Install\n\nSteps.\n\n### Linux\n\napt.\n\n## Usage\n\nRun it.\n"
    doc = load_document(write_file(tmp_path, "notes.md", notes))
    assert doc.title == "notes"
    assert [s.heading_path for s in doc.sections][-1] == ("Usage",)
    # A later heading above the first one: the first does not title the document either.
    upside = "## Details\n\nText.\n\n# Overview\n\nMore.\n"
    assert load_document(write_file(tmp_path, "upside.md", upside)).title == "upside"
