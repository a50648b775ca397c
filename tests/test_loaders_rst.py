"""reStructuredText loader: heading levels from adornment order, indented lookalikes ignored."""

from __future__ import annotations

from pathlib import Path

from ingest.loaders import load_document
from tests.documents import write_file

RST = """\
=================
 The Big Manual
=================

Preface text.

Getting started
===============

Start here with :func:`setup`.

Configuration
-------------

Config text::

    ============
    not a title because indented
    ============

:mod:`json` options
-------------------

Options text.

Reference
=========

Reference text.
"""


def test_rst_levels_follow_adornment_order(tmp_path: Path) -> None:
    doc = load_document(write_file(tmp_path, "manual.rst", RST))
    assert doc.title == "The Big Manual"
    paths = [s.heading_path for s in doc.sections]
    assert paths == [
        ("The Big Manual",),
        ("The Big Manual", "Getting started"),
        ("The Big Manual", "Getting started", "Configuration"),
        ("The Big Manual", "Getting started", "json options"),
        ("The Big Manual", "Reference"),
    ]
    config = doc.sections[2].text
    assert "not a title because indented" in config
    assert doc.sections[0].text == "Preface text."


def test_rst_titles_side_by_side_leave_the_document_untitled(tmp_path: Path) -> None:
    text = "Install\n=======\n\nSteps.\n\nUsage\n=====\n\nRun it.\n"
    doc = load_document(write_file(tmp_path, "howto.rst", text))
    assert doc.title == "howto"
    assert [s.heading_path for s in doc.sections] == [("Install",), ("Usage",)]
