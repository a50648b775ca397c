"""HTML loader: boilerplate removed, heading paths, encodings, and title fallbacks."""

from __future__ import annotations

from pathlib import Path

from ingest.loaders import load_document
from tests.documents import assert_load_error, write_file

HTML = """\
<!DOCTYPE html>
<html><head><meta charset="iso-8859-1"><title>Widget Docs</title>
<style>body { color: red }</style><script>var tracking = "SCRIPT-TEXT";</script></head>
<body>
<nav class="top">Home | Products | NAV-TEXT</nav>
<div class="related" role="navigation"><h3>Navigation</h3><ul><li>index</li></ul></div>
<div class="document"><div class="body" role="main">
  <h1>Widgets<a class="headerlink" href="#w">\xb6</a></h1>
  <p>Widgets are   small
     things for caf\xe9 owners.</p>
  <h2>Setup</h2>
  <p>Run the installer.</p>
  <pre>def main():
    return 1</pre>
  <table><tr><th>Name</th><th>Value</th></tr><tr><td><p>size</p></td><td>3</td></tr></table>
  <h3>Advanced</h3>
  <ul><li>first item</li><li>second item</li></ul>
  <div class="admonition note"><p class="admonition-title">Note</p><p>Careful.</p></div>
  <h2>Usage</h2>
  <p>Use it.</p>
</div></div>
<div class="sphinxsidebar"><h3>Previous topic</h3><p>SIDEBAR-TEXT</p></div>
<footer>&copy; Copyright 2024 FOOTER-TEXT</footer>
<div class="footer">Created using Sphinx. FOOTERDIV-TEXT</div>
</body></html>
"""


def test_html_boilerplate_removed_and_heading_paths_kept(tmp_path: Path) -> None:
    path = write_file(tmp_path, "widgets.html", HTML.encode("latin-1"))
    doc = load_document(path)
    assert doc.title == "Widget Docs"
    text = doc.text
    for junk in (
        "SCRIPT-TEXT",
        "color: red",
        "NAV-TEXT",
        "Navigation",
        "SIDEBAR-TEXT",
        "Previous topic",
        "FOOTER-TEXT",
        "FOOTERDIV-TEXT",
        "\xb6",
    ):
        assert junk not in text, junk
    paths = [s.heading_path for s in doc.sections]
    assert paths == [
        ("Widgets",),
        ("Widgets", "Setup"),
        ("Widgets", "Setup", "Advanced"),
        ("Widgets", "Usage"),
    ]
    # meta charset honoured; whitespace collapsed inside a paragraph
    assert doc.sections[0].text == "Widgets are small things for café owners."
    setup = doc.sections[1].text
    assert "Run the installer.\n\ndef main():\n    return 1\n\n" in setup  # pre keeps newlines
    assert "Name | Value\nsize | 3" in setup
    advanced = doc.sections[2].text
    assert "first item\nsecond item" in advanced
    assert "Note\n\nCareful." in advanced


def test_html_docbook_chrome_and_admonition(tmp_path: Path) -> None:
    page = (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>5.1. Basics</title></head>'
        '<body id="docContent"><div class="navheader"><table><tr><td><a>Prev</a></td>'
        "<td><a>Up</a></td><td><a>Next</a></td></tr></table></div>"
        '<div class="sect1"><h2 class="title">5.1. Basics</h2><p>A table has rows.</p>'
        '<div class="tip"><h3 class="title">Tip</h3><p>Name things well.</p></div>'
        "<p>After the tip.</p></div>"
        '<div class="navfooter"><table><tr><td>Home</td></tr></table></div></body></html>'
    )
    doc = load_document(write_file(tmp_path, "basics.htm", page))
    assert doc.title == "5.1. Basics"
    assert len(doc.sections) == 1
    assert doc.sections[0].heading_path == ("5.1. Basics",)
    assert doc.sections[0].text == "A table has rows.\n\nTip\n\nName things well.\n\nAfter the tip."


def test_html_title_falls_back_to_h1_then_stem(tmp_path: Path) -> None:
    doc = load_document(write_file(tmp_path, "a.html", "<body><h1>Only H1</h1><p>x y</p></body>"))
    assert doc.title == "Only H1"
    doc = load_document(write_file(tmp_path, "plain-page.html", "<p>just text</p>"))
    assert doc.title == "plain-page"


def test_html_only_boilerplate_has_no_text(tmp_path: Path) -> None:
    path = write_file(tmp_path, "chrome.html", "<html><body><nav>menu</nav><script>x()</script>")
    assert_load_error(path, "no extractable text")


def test_utf16_html_is_decoded(tmp_path: Path) -> None:
    path = write_file(tmp_path, "wide.html", "<p>héllo wide</p>".encode("utf-16"))
    assert load_document(path).text == "héllo wide"


def first_section(tmp_path: Path, page: str) -> str:
    """The text of the first section of ``page`` loaded from an HTML file."""
    return load_document(write_file(tmp_path, "page.html", page)).sections[0].text


def test_a_table_with_a_header_group_is_one_block_under_its_header(tmp_path: Path) -> None:
    page = (
        "<html><body><h1>Limits</h1><p>Hard limits:</p><table><caption>Table 1</caption>"
        "<thead><tr><th>Item</th><th>Limit</th></tr></thead>"
        "<tbody><tr><td>field size</td><td>1 GB</td></tr><tr><td>columns</td><td>1,600</td></tr>"
        "</tbody><tfoot><tr><td>total</td><td>-</td></tr></tfoot></table><p>After.</p></body></html>"
    )
    assert first_section(tmp_path, page) == (
        "Hard limits:\n\nTable 1\n\nItem | Limit\nfield size | 1 GB\ncolumns | 1,600\n"
        "total | -\n\nAfter."
    )


def test_a_table_of_one_column_is_paragraphs(tmp_path: Path) -> None:
    """A reference's function table: one cell per row, a signature and its description, each
    a paragraph of the cell (the label of an entry, then its text)."""
    page = (
        "<html><body><h1>Formatting</h1><table><thead><tr><th><p>Function</p><p>Description"
        "</p></th></tr></thead><tbody><tr><td><p>to_char ( interval, text )</p><p>Converts an "
        "interval to a string.</p></td></tr><tr><td><p>to_date ( text, text )</p><p>Converts "
        "a string to a date.</p></td></tr></tbody></table></body></html>"
    )
    assert first_section(tmp_path, page) == (
        "Function\n\nDescription\n\nto_char ( interval, text )\n\nConverts an interval to a "
        "string.\n\nto_date ( text, text )\n\nConverts a string to a date."
    )
    # A cell that holds a table of its own is read as a row, its table's cells as cells.
    inner = "<table><tr><td>a</td></tr><tr><td>b</td></tr></table><p>C"
    nested = page.replace("<p>Converts a string", inner)
    assert first_section(tmp_path, nested).endswith("\n\nto_date ( text, text ) a b C to a date.")
    # A row of one cell in a table of several (a group heading) stays a row of the table.
    wide = page.replace("<td><p>to_date", "<td>x</td><td><p>to_date")
    assert first_section(tmp_path, wide).endswith(
        "a string.\nx | to_date ( text, text ) Converts a string to a date."
    )


def test_a_line_break_inside_inline_markup_keeps_the_words_apart(tmp_path: Path) -> None:
    """DocBook writes an option's forms as terms ended by a <br> inside their span; an
    AsciiDoc footnote sits between <br>s too, but reads as an aside within its sentence."""
    page = (
        "<html><body><h1>pg_dump</h1><dl><dt><span class='term'><code>-c</code><br /></span>"
        "<span class='term'><code>--clean</code></span></dt><dd><p>Drop objects first.</p></dd>"
        "</dl><p>Sent to the list<span class='footnoteref'><br /><a href='#l'>[list]</a><br />"
        "</span>.</p></body></html>"
    )
    expected = "-c\n--clean\n\nDrop objects first.\n\nSent to the list[list]."
    assert first_section(tmp_path, page) == expected


def test_html_heading_permalinks_of_other_generators_dropped(tmp_path: Path) -> None:
    # Apache's manual ends a heading with a "¶" link, Node's docs with "#", rustdoc with "§";
    # a heading that is itself a link keeps its words, and a footer known by its id goes.
    page = (
        "<html><head><title>Guide</title></head><body>"
        '<h1>Guide <a class="permalink" href="#guide" title="Permanent link">&para;</a></h1>'
        "<p>Intro.</p>"
        '<h2>File system<span><a class="mark" href="#fs" id="fs">#</a></span></h2><p>Files.</p>'
        '<h3>fs.mkdir(path)<a class="anchor" href="#mkdir">§</a></h3><p>Makes one.</p>'
        '<h3><a href="#rmdir">fs.rmdir(path)</a></h3><p>Removes one.</p>'
        '<div id="footer"><p>Copyright 2026 FOOTER-TEXT</p></div>'
        "</body></html>"
    )
    doc = load_document(write_file(tmp_path, "guide.html", page.encode()))
    assert [s.heading_path for s in doc.sections] == [
        ("Guide",),
        ("Guide", "File system"),
        ("Guide", "File system", "fs.mkdir(path)"),
        ("Guide", "File system", "fs.rmdir(path)"),
    ]
    assert "FOOTER-TEXT" not in doc.text


def test_html_a_list_of_links_to_the_pages_own_headings_is_dropped(tmp_path: Path) -> None:
    # Apache's manual lists an FAQ's questions, and a module its directives, as links to
    # their headings: a table of contents. Links to entries or to other pages are content.
    page = (
        "<html><head><title>FAQ</title></head><body><h1>FAQ</h1>"
        '<ul><li><a href="#ports">Which port?</a></li><li><a href="#hang">Why hang?</a></li>'
        '<li><a href="#keys">Which keys?</a></li></ul>'
        '<h2 id="ports">Which port?</h2><p>Port 443.</p>'
        '<div class="section" id="hang"><h2>Why hang?</h2><p>Reverse lookups.</p></div>'
        '<h2><a id="keys"></a>Which keys?</h2><p>RSA keys.</p>'
        "<p>Warnings shown in development mode:</p>"
        '<ul><li><a href="#w1">W1</a></li><li><a href="#w2">W2</a></li>'
        '<li><a href="other.html#w3">W3</a></li></ul>'
        '<dl><dt id="w1">W1</dt><dd>One.</dd><dt id="w2">W2</dt><dd>Two.</dd></dl>'
        "</body></html>"
    )
    doc = load_document(write_file(tmp_path, "faq.html", page.encode()))
    assert "Which port?" not in doc.text and "Why hang?" not in doc.text
    assert [s.heading_path[-1] for s in doc.sections] == ["Which port?", "Why hang?", "Which keys?"]
    assert "W1\nW2\nW3" in doc.text


def test_html_texinfo_node_lines_entry_anchors_and_contents_dropped(tmp_path: Path) -> None:
    # Texinfo (GNU manuals): a "Next: ... Up: ..." line above every node, a "¶" link after
    # each index entry's label, and a table of contents linking to the nodes' divisions.
    page = (
        "<html><head><title>Zorb Manual</title></head><body>"
        '<div class="top" id="Top"><h1>Zorb Manual</h1>'
        '<div class="contents"><ul class="no-bullet">'
        '<li><a href="#Intro">1 Intro</a></li><li><a href="#Vars">2 Variables</a></li>'
        '<li><a href="#Index">3 Index</a></li></ul></div></div>'
        '<div class="chapter" id="Intro"><div class="header"><p>Next: <a href="#Vars">'
        'Variables</a>, Up: <a href="#Top">Top</a> [<a href="#Index">Index</a>]</p></div>'
        '<h2 class="chapter">1 Intro</h2><p>Zorb spins things.</p></div>'
        '<div class="chapter" id="Vars"><div class="nav-panel"><p>Previous: <a href="#Intro">'
        "Intro</a></p></div><h2>2 Variables</h2><dl>"
        "<dt id='index-ZORB_005fDEPTH'><span><code>ZORB_DEPTH</code>"
        "<a href='#index-ZORB_005fDEPTH' class='copiable-anchor'> &para;</a></span></dt>"
        "<dd><p>How deep a zorb goes.</p></dd></dl></div>"
        '<div class="appendix" id="Index"><h2>3 Index</h2><p>ZORB_DEPTH: Variables.</p></div>'
        "</body></html>"
    )
    doc = load_document(write_file(tmp_path, "zorb.html", page.encode()))
    for junk in ("Next:", "Previous:", "\xb6", "1 Intro\n"):
        assert junk not in doc.text, junk
    assert "ZORB_DEPTH\n\nHow deep a zorb goes." in doc.text
    assert [s.heading_path[-1] for s in doc.sections] == ["1 Intro", "2 Variables", "3 Index"]
