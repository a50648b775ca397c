"""Quoted answers: the part of a passage that answers a question, readable as written.

A quote is built from blocks of the text around a passage (paragraphs, list items, code, and
tables): the block holding the sentence that best supports an answer, the block before it
when the sentence needs it (a label, a lead-in ending in a colon, a sentence that points
back), the blocks after it as far as ``SPAN_CHARS`` reaches (documentation states a thing
first and qualifies it after), then, if room is left, the blocks before it, unless they end
another entry or note the version of what came before them. The supporting
sentence is set in bold, and lines that a file wrapped at a fixed width are joined. A table
comes out as Markdown rows under its header row, never as a run-on of cells. A quote that
opens inside an entry, below its label, says which entry (``Excerpt.entry``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.context import Passage
from rag.entries import label_kind, label_lines
from rag.text import (
    CELL,
    MAX_LABEL_CHARS,
    POINTS_BACK,
    rows_meet,
    split_blocks,
    split_sentences,
    unwrap_lines,
)
from rag.types import Chunk

# How much text a quote grows to around its supporting block. Quoting less loses the
# sentence next to the best one that holds the asked value more often than it gains clarity.
SPAN_CHARS = 1300
_SHORT_BLOCK = 120  # a block this short says little alone: its neighbour comes along
# A heading's line, which a quote does not end with: a few words, no sentence.
_HEADING_WORDS = 3
_HEADING = re.compile(r"[A-Za-z_][A-Za-z_.\- ]*(?<!\.):?")
_LABEL_PREFIX = re.compile(r"^[^:]{1,80}: ")
# A note on the version that brought or changed what stands above it, as Sphinx writes one.
_VERSION_NOTE = re.compile(r"(?:New in|Changed in|Deprecated since) version\b")
# Chunks one character apart that end in these were split inside a paragraph, at a space.
_SENTENCE_PUNCTUATION = (".", "!", "?", ";", ",")


@dataclass(frozen=True)
class Excerpt:
    """A quote: its Markdown ``text`` (supporting sentence in bold), the same ``plain``, and
    the ``supporting`` sentences it sets in bold, as written in the document. ``entry``: the
    label of the entry the quote opens inside, below that label ("--ignored[=<mode>]"), as
    one line; None when it opens at a label or outside any entry."""

    text: str
    plain: str
    supporting: list[str]
    entry: str | None = None


def excerpt(
    text: str, best: Sequence[str], *, span: int = SPAN_CHARS, entry_label: str | None = None
) -> Excerpt:
    """The part of ``text`` around the first of the ``best`` sentences found in it (ranked
    best first, a definition label's "label: " prefix allowed), or its start when none is.
    ``entry_label``: the label of the entry whose first sentence is the first of ``best``;
    the quote starts at that label, in the block after which the sentence is sought."""
    blocks = split_blocks(text)
    if not blocks:
        return Excerpt("", "", [])
    entry = _after_label(blocks, entry_label, best[0] if best else "")
    if entry is not None and sum(map(len, blocks[entry[0] : entry[1] + 1])) > span:
        entry = None  # the sentence stands far down its entry: quoted around it, as any other
    labelled = entry is not None
    start, target, sentence = (-1, *_find(blocks, best)) if entry is None else entry
    chosen = list(range(start, target + 1)) if labelled else [target]
    size = sum(len(blocks[i]) for i in chosen)
    if not labelled and target > 0 and _needs_previous(blocks[target - 1], blocks[target]):
        chosen.insert(0, target - 1)
        size += len(blocks[target - 1])
    # The entry of what was asked ends where the next entry of its kind starts: a list of
    # options or functions goes on with others, which answer nothing asked. A label that
    # only came along with the best sentence does not stop the quote: when that sentence
    # was the wrong option's, the right one is often among those that follow.
    label = label_kind(blocks[start]) if labelled else None
    after = target + 1
    while after < len(blocks) and size + len(blocks[after]) <= span:
        following = label_kind(blocks[after]) if label else None
        if label and following and following[0] == label[0] and following[1] != label[1]:
            break
        chosen.append(after)
        size += len(blocks[after])
        after += 1
    if after < len(blocks) and size < span and _is_table(blocks[after]):
        chosen.append(after)  # a table's first rows rather than nothing of it
    # Nor does a quote end at a label or a heading line: what it introduces is another
    # thing than the quote's, or would not fit. (A signature of a name labelled up to the
    # best sentence is an example of it.)
    labels = {kind[1] for i in chosen if i <= target and (kind := label_kind(blocks[i]))}
    while chosen[-1] > target and _dangles(blocks[chosen[-1]], labels):
        size -= len(blocks[chosen.pop()])
    # An entry starts at its label: the blocks above it belong to another one.
    before = -1 if labelled else chosen[0] - 1
    core = chosen[0]
    while before >= 0 and size + len(blocks[before]) <= span:
        chosen.insert(0, before)  # room left: what leads up to it
        size += len(blocks[before])
        before -= 1
    # Nor does what leads up to it open with the end of something it leaves out.
    while chosen[0] < core and _ends_another(blocks, chosen[0], core):
        size -= len(blocks[chosen.pop(0)])
    shown = [_render(blocks[i], sentence if i == target else None, span) for i in chosen]
    plain = [_render(blocks[i], None, span) for i in chosen]
    return Excerpt(
        "\n\n".join(shown),
        "\n\n".join(plain),
        [sentence] if sentence else [],
        _opened_in(blocks, chosen[0]),
    )


def _opened_in(blocks: Sequence[str], first: int) -> str | None:
    """The label of the entry that the block at ``first`` belongs to without being its
    label: the nearest label above it (``label_kind``), its lines joined by ", ". The middle
    of an option's description ("The possible options are: ...") does not say which option
    it describes."""
    if label_kind(blocks[first]) is not None:
        return None
    above = next((b for b in reversed(blocks[:first]) if label_kind(b) is not None), None)
    if above is None:
        return None
    return ", ".join(label_lines(above))


def _ends_another(blocks: Sequence[str], at: int, core: int) -> bool:
    """Whether the block at ``at``, above a quote's ``core`` block, ends something else: a
    note on the version of what came before it ("Deprecated since version 3.9: ..."), or
    the end of an entry, a block that is no label with a label (``label_kind``) above it and
    another between it and the core (up to the core's own)."""
    block = blocks[at]
    if _VERSION_NOTE.match(block.lstrip()):
        return True
    if label_kind(block) is not None:
        return False
    return any(label_kind(b) for b in blocks[:at]) and any(
        label_kind(b) for b in blocks[at + 1 : core + 1]
    )


def _dangles(block: str, labels: set[str]) -> bool:
    """Whether a block only introduces what follows it: an entry's label (``label_kind``)
    but for a signature of a name the quote labels already (its example: "zorb(3) → 1, 2"),
    or a heading's line: at most three words of letters, "_", "." and "-", perhaps a colon
    after them ("Note", "See also", "Example:", "http.userAgent"; not "Default: false")."""
    kind = label_kind(block)
    if kind is not None:
        return kind[0] == "option" or kind[1] not in labels
    line = " ".join(block.split())
    return len(line.split()) <= _HEADING_WORDS and _HEADING.fullmatch(line) is not None


def _is_table(block: str) -> bool:
    """Whether a block is a table as the loaders write one: most of its lines are rows of
    cells. Preformatted text with pipes in it (a grammar, a command's synopsis, a SQL shell's
    output) is quoted as written: its lines are indented, or define grammar rules ("::="), or
    most of its pipes stand inside brackets ("[ ASC | DESC ]"); a loader writes rows
    unindented, most cells' brackets closed within them."""
    lines = block.splitlines()
    rows = [line for line in lines if CELL in line]
    return (
        len(lines) >= 2
        and len(rows) * 2 >= len(lines)
        and not any(line[:1].isspace() or "::=" in line for line in lines)
        and sum(map(_pipe_in_brackets, rows)) * 2 < len(rows)
    )


def _pipe_in_brackets(line: str) -> bool:
    """Whether a cell separator of ``line`` stands inside brackets opened before it."""
    depth = 0
    for part in line.split(CELL)[:-1]:
        depth += sum(map(part.count, "([{")) - sum(map(part.count, ")]}"))
        if depth > 0:
            return True
    return False


def _after_label(
    blocks: Sequence[str], label: str | None, first: str
) -> tuple[int, int, str] | None:
    """Where the first block that is ``label`` stands, where the entry's ``first`` sentence
    does after it (the next block, unless one further down holds it: a function's other
    signatures come between), and that sentence as written there (empty when none is found);
    None without a label, or when no block is it."""
    if not label:
        return None
    wanted = " ".join(label.split())
    for i, block in enumerate(blocks[:-1]):
        if " ".join(block.split()) == wanted:
            pattern = _pattern(first)
            for k in range(i + 1, len(blocks)) if pattern else ():
                found = pattern.search(blocks[k]) if pattern else None
                if found:
                    return i, k, found.group(0)
            sentences = split_sentences(blocks[i + 1])
            pattern = _pattern(sentences[0]) if sentences else None
            found = pattern.search(blocks[i + 1]) if pattern else None
            return i, i + 1, found.group(0) if found else ""
    return None


def _pattern(sentence: str) -> re.Pattern[str] | None:
    words = sentence.split()
    if not words:
        return None
    return re.compile(r"\s+".join(re.escape(w) for w in words))


def _find(blocks: Sequence[str], best: Sequence[str]) -> tuple[int, str]:
    """The block holding the best sentence that occurs in the text, and that sentence as
    written there; the first block and no sentence when none occurs."""
    for candidate in best:
        for sentence in (candidate, _LABEL_PREFIX.sub("", candidate, count=1)):
            pattern = _pattern(sentence)
            if pattern is None:
                continue
            for i, block in enumerate(blocks):
                match = pattern.search(block)
                if match:
                    return i, match.group(0)
    return 0, ""


def _needs_previous(previous: str, block: str) -> bool:
    """Whether a block reads wrongly without the one before it."""
    line = " ".join(previous.split())
    label = len(line) <= MAX_LABEL_CHARS and not line.endswith((".", "!", "?"))
    return (
        label
        or line.endswith(":")
        or len(" ".join(block.split())) < _SHORT_BLOCK
        or bool(POINTS_BACK.match(block.lstrip()))
    )


def _render(block: str, sentence: str | None, span: int) -> str:
    if _is_table(block):
        return _table(block, sentence, span)
    # Chat frontends render every line break, which would leave the quote ragged.
    block = unwrap_lines(block)
    pattern = _pattern(sentence) if sentence else None
    found = pattern.search(block) if pattern else None
    if found:
        # Bold inside one line only: Markdown does not carry ** across a line break.
        bolded = "\n".join(_bold(line) for line in found.group(0).split("\n"))
        return block[: found.start()] + bolded + block[found.end() :]
    return block


def _bold(line: str) -> str:
    """``line`` in bold; spaces stay outside the markers, where Markdown needs them."""
    text = line.strip()
    if not text:
        return line
    start = line.index(text)
    return f"{line[:start]}**{text}**{line[start + len(text) :]}"


def _table(block: str, sentence: str | None, span: int) -> str:
    """A table block as Markdown: its header row, then the rows from the one holding
    ``sentence`` on (from the first when none does), as far as ``span`` reaches."""
    lines = [line for line in block.splitlines() if line.strip()]
    # A row whose last cell is empty ends in " |" once its trailing space is stripped.
    rows = [[c.strip() for c in f"{line} ".split(CELL)] for line in lines]
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    start = next((i for i, line in enumerate(lines) if i and sentence and sentence in line), None)
    shown = [_row(rows[0]), _row(["---"] * width)]
    size = sum(map(len, shown))
    for i in range(start or 1, len(rows)):
        bold = i == start
        line = _row([f"**{c}**" if c and bold else c for c in rows[i]])
        if len(shown) > 2 and size + len(line) > span:
            break
        shown.append(line)
        size += len(line)
    return "\n".join(shown)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def quoted_text(passage: Passage, window: Sequence[Chunk] = ()) -> str:
    """What a quote of the passage reads: its window joined, or its chunk alone when the
    window does not hold it."""
    chunk = passage.hit.chunk
    if window and any(c.id == chunk.id for c in window):
        return join_chunks(window)
    return chunk.text.strip()


def join_chunks(chunks: Sequence[Chunk]) -> str:
    """Neighbouring chunks of one file as one text: overlaps cut, a paragraph break between
    chunks that a blank line or more separated (offsets two or more characters apart), and
    between chunks one character apart a space after a sentence's punctuation, else (and
    between two table rows) a line break. The chunker splits a long paragraph at sentences, a
    table or code at its lines: joined with a space, two rows of a table would run on as one."""
    text = ""
    end = -1
    for chunk in chunks:
        body = chunk.text
        if text and chunk.start < end:  # overlapping chunks: skip what was already said
            body = body[end - chunk.start :]
            gap = ""
        elif chunk.start - end >= 2:
            gap = "\n\n"
        elif rows_meet(text, body) or not text.endswith(_SENTENCE_PUNCTUATION):
            gap = "\n"  # a table row may end in a full stop too
        else:
            gap = " "
        text = f"{text}{gap}{body}" if text else body
        end = max(end, chunk.end)
    return text.strip()
