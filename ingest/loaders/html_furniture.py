"""What of an HTML page is furniture, not content, and where its content is.

Site chrome (scripts, navigation, sidebars, footers), the page furniture of documentation
generators (Sphinx's and DocBook's boxes, permalinks after headings and entry labels,
Texinfo's node lines, tables of contents in any markup) and the main content container. Every
function edits or reads a parsed page before ``html`` walks its structure into sections.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selectolax.lexbor import LexborHTMLParser, LexborNode

HEADING_TAGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_ANY_HEADING = ", ".join(HEADING_TAGS)
# Removed before walking: site chrome, not content. Class selectors cover Sphinx and DocBook.
_DROP_SELECTORS = (
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
    "#footer",
    "div.navheader",
    "div.navfooter",
    "div.mobile-nav",
    "div.skip-link",
    "#sidebarbutton",
    "p.skip-link",
)
_DROP_QUERY = ", ".join(_DROP_SELECTORS)
# Generated tables of contents (DocBook div.toc, Sphinx/docutils "contents" topic) only repeat
# headings found elsewhere; dropped unless they are all a page has.
_TOC_QUERY = ", div.toc, div.contents.topic, div.toctree-wrapper"
# A list of at least this many links to the page's own headings is its table of contents.
_TOC_MIN_LINKS = 3
_NOT_WORD = re.compile(r"[\W_]+")  # what a list's text may hold besides its links' words
_PERMALINK_SIGNS = frozenset({"", "¶", "#", "§", "🔗", "⚓", "⚓︎"})
# Texinfo's line of links to the next, previous and parent nodes above every node.
_NODE_NAVIGATION = re.compile(r"\s*(?:Next|Previous|Prev|Up):")
_ADMONITION_HEADINGS = ", ".join(
    f"div.{kind} > {h}"
    for kind in ("note", "tip", "warning", "caution", "important", "admonition")
    for h in HEADING_TAGS
)
# Tried in order; the first match is taken as the page's main content.
_MAIN_SELECTORS = (
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


def drop_furniture(tree: LexborHTMLParser, *, drop_toc: bool) -> None:
    """Removes a page's furniture from ``tree``; its tables of contents too when
    ``drop_toc`` (not when they are all a page has)."""
    # One grouped query walks the tree once, not once per selector. lexbor returns matches in
    # document order, so destroying them in reverse frees a nested match before its ancestor and no
    # Python handle ever points into an already freed subtree.
    for node in reversed(tree.css(_DROP_QUERY + _TOC_QUERY if drop_toc else _DROP_QUERY)):
        node.decompose()
    if drop_toc:  # first: a heading's permalink may hold the id its list links to
        _drop_heading_lists(tree)
    # A permalink ("¶" in Sphinx, Apache's manual and Texinfo's entries, "#" in Node's, "§"):
    # a link to an anchor of the page whose text is a sign, which would end every heading
    # path and entry label it stands in.
    for node in reversed(tree.css("a[href^='#']")):
        if node.text(deep=True).strip() in _PERMALINK_SIGNS:
            node.decompose()
    for node in reversed(tree.css("div.nav-panel, div.header")):
        if _NODE_NAVIGATION.match(node.text(deep=True)):
            node.decompose()
    # Sphinx themes title the sidebar/related blocks "Navigation"; drop stray ones left over.
    for node in reversed(tree.css("h3")):
        if node.text(deep=True).strip() == "Navigation":
            node.decompose()
    # DocBook titles its admonitions with <h3>Tip</h3>; as a heading it would swallow the text
    # that follows the box, so keep it as a plain label instead.
    for node in tree.css(_ADMONITION_HEADINGS):
        node.replace_with(node.text(deep=True))


def main_container(tree: LexborHTMLParser) -> LexborNode | None:
    """The page's main content: the first of ``_MAIN_SELECTORS`` it has, else its body
    without a page-level ``<header>`` (site chrome: logo, menus)."""
    for selector in _MAIN_SELECTORS:
        node = tree.css_first(selector)
        if node is not None:
            return node
    body = tree.body
    if body is not None:
        for node in reversed(body.css("header")):
            node.decompose()
    return body


def _drop_heading_lists(tree: LexborHTMLParser) -> None:
    """Drops the lists that are nothing but links to the page's own headings: a table of
    contents in whatever markup (Apache's manual: an FAQ's list of its questions, a module's
    list of its directives). A list of links to the page's entries or to other pages stays.
    The page's heading targets are read only when it has a list of in-page links at all."""
    linking = [(node, targets) for node in tree.css("ul, ol") if (targets := _in_page(node))]
    if not linking:
        return
    headed = _heading_targets(tree)
    for node, targets in reversed(linking):
        if targets <= headed:
            node.decompose()


def _in_page(node: LexborNode) -> set[str]:
    """The anchors a list links to when it is nothing but at least ``_TOC_MIN_LINKS`` links
    to anchors of the page; empty otherwise."""
    links = node.css("a")
    if len(links) < _TOC_MIN_LINKS:
        return set()
    hrefs = [link.attributes.get("href") or "" for link in links]
    if not all(href.startswith("#") for href in hrefs):
        return set()
    text = _NOT_WORD.sub("", node.text(deep=True))
    if text != "".join(_NOT_WORD.sub("", a.text(deep=True)) for a in links):
        return set()
    return {href[1:] for href in hrefs}


def _heading_targets(tree: LexborHTMLParser) -> set[str]:
    """The ids (and ``<a name>``s) of the page that stand for a heading (``_is_heading_target``)."""
    headed: set[str] = set()
    for node in tree.css("[id], a[name]"):
        target = node.attributes.get("id") or node.attributes.get("name")
        if target and _is_heading_target(node):
            headed.add(target)
    return headed


def _is_heading_target(node: LexborNode) -> bool:
    """Whether an element with an id is a heading, is inside one, is a division or section
    that holds one (Texinfo's nodes, Sphinx's sections), or opens with one."""
    current: LexborNode | None = node
    while current is not None and current.tag not in ("body", "html"):
        if current.tag in HEADING_TAGS:
            return True
        current = current.parent
    if node.tag in ("div", "section", "article"):  # a section with its heading, any markup
        return node.css_first(_ANY_HEADING) is not None
    first = node.child
    while first is not None and first.tag in ("-text", "_comment", "-comment"):
        first = first.next
    return first is not None and first.tag in HEADING_TAGS
