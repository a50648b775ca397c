"""Supporting sentences, and a check that a generated answer says only what its context says.

A small model often answers wrongly even with the right page in its context. So the answer is
checked against the passages, sentence by sentence: what an answer sentence adds beyond the
question must be said by one passage sentence that is about what was asked, with its numbers
and code names exactly; an answer that only restates the question, loops or announces itself
fails. When the check fails the answer falls back to quoting the passage sentences that
support an answer, which is always true to the documents.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.context import Passage, Support
from rag.embedding import Embedder
from rag.entries import is_entry_label, label_kind
from rag.store.base import bm25_terms
from rag.text import (
    POINTS_BACK,
    content_words,
    labelled_sentences,
    names_term,
    numbers,
    sentence_labels,
    split_blocks,
    split_sentences,
    word_tokens,
)
from rag.types import HEADING_SEPARATOR

_MARKER = re.compile(r"\[\d{1,3}\]")
_MARKER_NUMBER = re.compile(r"\[(\d{1,3})\]")
_ANNOUNCE = re.compile(r"\W*the answer(?: to (?:your|the|this) question\b.*?)? is\b", re.I)
_STUTTER = re.compile(r"\b([A-Za-z]{3,})(?:\W+\1\b){2,}", re.IGNORECASE)
# A run of this many words said again within _ECHO_SPAN words: a small model looping
# mid-sentence ("... to create a mock object that can be used to create a mock object that
# can be"). A long answer of a larger model may well repeat a phrase further apart.
_ECHO_WORDS = 6
_ECHO_SPAN = 40
_MAX_SENTENCES = 80  # sentences embedded per question: bounds the cost of ranking them
_SHARED_WORDS_WEIGHT = 0.3  # a sentence's score: similarity + this x share of question words
_MIN_COVERAGE = 0.75  # share of an answer sentence's content words its sources must hold


def supporting_sentences(
    question: str, passages: Sequence[Passage], embedder: Embedder, *, top: int = 2
) -> list[Support]:
    """The ``top`` context sentences closest to the question (embedding similarity + shared
    words), best first. Only the first ``_MAX_SENTENCES`` sentences of the passages, in
    context order, are candidates."""
    # A sentence is read with its passage's headings: "Removed features" tells what it is about.
    candidates = [
        (p.n, s, f"{p.hit.chunk.context}\n{s}")
        for p in passages
        for s in labelled_sentences(p.text)
    ][:_MAX_SENTENCES]
    if not candidates:
        return []
    vectors = embedder.embed_documents([framed for _, _, framed in candidates])
    similarity = np.asarray(vectors @ embedder.embed_query(question))
    asked = content_words(question)
    scores = [
        float(sim) + _SHARED_WORDS_WEIGHT * len(asked & content_words(framed)) / max(1, len(asked))
        for sim, (_, _, framed) in zip(similarity, candidates, strict=True)
    ]
    best = sorted(range(len(candidates)), key=lambda i: -scores[i])[:top]
    return [Support(candidates[i][0], candidates[i][1], scores[i], i) for i in best]


@dataclass(frozen=True)
class ClaimCheck:
    """What ``check_claims`` found."""

    unsupported: list[str]
    """Answer sentences that no passage sentence supports, then the answer's
    ``degenerate_lines``. Empty means the answer passes the check."""
    support: dict[int, list[str]]
    """Per passage number, its sentences (as written, whitespace collapsed) that support a
    sentence of the answer, in the order of the answer's sentences."""


def named_in_passing(question: str, terms: Sequence[str], quoted: str, about: str) -> list[str]:
    """The ``terms`` that ``quoted`` names only in passing: no sentence of it that names the
    term shares another word with ``question``, while the question has other words; ``about``
    (the quote's heading path, page title and source) does not name it, and the quote holds
    no entry labelled with it (``is_entry_label``). A quote that names what was asked about
    only so ("see the Django documentation", closing a logging recipe, asked how to define a
    Django model) is about something else. So is one that names it only in a "See also" list
    (``_references``), whose lines look like entries' labels but name other documents."""
    asked = bm25_terms(question)
    blocks = split_blocks(quoted)
    referring = _references(blocks)
    sentences = [s for i, b in enumerate(blocks) if i not in referring for s in split_sentences(b)]
    passing = []
    for term in terms:
        others = asked - bm25_terms(term)
        if not others or names_term(about, term):
            continue  # nothing else asked to compare with, or a heading names the term
        if any(is_entry_label(term, b) for i, b in enumerate(blocks) if i not in referring):
            continue  # the quote holds the term's entry ("work_mem (integer)")
        naming = [s for s in sentences if names_term(s, term)]
        if naming and not any(bm25_terms(s) & others for s in naming):
            passing.append(term)
        elif not naming and any(names_term(blocks[i], term) for i in referring):
            passing.append(term)  # named only where the quote points elsewhere
    return passing


def _references(blocks: Sequence[str]) -> set[int]:
    """The blocks that point elsewhere: from a "See also" line up to the next entry's label
    (``label_kind``) or the end. What a reference names is another document's subject."""
    referring: set[int] = set()
    inside = False
    for i, block in enumerate(blocks):
        line = " ".join(block.split()).rstrip(":").lower()
        if line == "see also":
            inside = True
        elif inside and label_kind(block) is not None:
            inside = False
        if inside:
            referring.add(i)
    return referring


def unsupported_claims(
    answer: str, passages: Sequence[Passage], *, question: str = ""
) -> list[str]:
    """``check_claims(...).unsupported``."""
    return check_claims(answer, passages, question=question).unsupported


def check_claims(answer: str, passages: Sequence[Passage], *, question: str = "") -> ClaimCheck:
    """Each answer sentence checked against the passages: those no single passage sentence
    supports, and the sentences that support the others.

    A sentence is supported when one sentence of a passage it cites ([n]; all passages when it
    cites none), read with its passage's headings and its definition label, or that sentence
    with a next one that points back to it ("It ...", "This ..."), holds:

    - at least ``_MIN_COVERAGE`` of the words the answer sentence adds beyond the question,
      and as much of the question's words that it repeats and the passages hold (so the
      added words are said of what was asked, not of a neighbour the passage also lists);
    - every number and identifier it adds, exactly: ``copy`` is not ``copy2``;
    - at least one word of the question, when there is a question;
    - the same polarity: a negated claim needs a negated sentence, and the reverse.

    A sentence that adds nothing beyond the question (no word, number, name or change of
    polarity) restates it and is unsupported. A line that only copies a passage's heading path
    states nothing. An answer with no checkable sentence at all fails as a whole.
    """
    by_n = {p.n: p for p in passages}
    units = {p.n: _units(p) for p in passages}
    asked = _Claim(question)
    claims: list[str] = []
    support: dict[int, list[str]] = {}
    # The prompt shows each passage under its heading path ("[1] Guide > Setup"): a line
    # that copies one, or its start, names a place and states nothing.
    labels: set[str] = set()
    for p in passages:
        if p.hit.chunk.context:
            path = p.hit.chunk.context.split(HEADING_SEPARATOR)
            labels.update(_plain(HEADING_SEPARATOR.join(path[:i])) for i in range(1, len(path) + 1))
    said_something = False
    for sentence in _claim_sentences(answer):
        cited = [int(n) for n in _MARKER_NUMBER.findall(sentence) if int(n) in by_n]
        text = _MARKER.sub("", sentence).strip()
        claim = _Claim(text)
        if not claim.stems and not claim.identifiers and not claim.numbers:
            continue  # "Yes." or a bare marker: nothing to check
        if _plain(text) in labels:
            continue
        said_something = True
        candidates = [u for n in cited or list(units) for u in units[n]]
        # The question's words these passages hold: those an answer repeats must be said of
        # the same thing as its new words. Others ("function", "tell me") only frame it.
        held = frozenset().union(*(u.framed.stems for u in candidates))
        supported = False
        for n in cited or list(units):
            # A passage's first sentence (or pair) that supports the claim is its support.
            unit = next((u for u in units[n] if _supports(u, claim, asked, held)), None)
            if unit is not None:
                supported = True
                found = support.setdefault(n, [])
                found += [s for s in unit.sentences if s not in found]
        if not supported:
            claims.append(text)
    if not said_something:  # "The answer is: [1]." states nothing checkable
        claims.append(answer)
    return ClaimCheck(claims + degenerate_lines(answer), support)


def _plain(text: str) -> str:
    return " ".join(text.split()).lower().rstrip(".:")


def degenerate_lines(answer: str) -> list[str]:
    """Lines of a looping or template-filling answer: one said again ("The answer is:" ...
    "The answer is:"), a word said three times running ("lightweight, lightweight,
    lightweight"), a run of ``_ECHO_WORDS`` words said again within ``_ECHO_SPAN`` words, or a
    line that announces an answer ("The answer to your question is:").

    Such answers copy words from the sources, so they pass the word check, yet they are
    rarely right: a model that loops or fills a template has lost the thread. Two identical
    one-word lines ("Yes.") are not a loop."""
    seen: set[str] = set()
    runs: dict[tuple[str, ...], int] = {}  # a run of words -> where it last ended
    words: list[str] = []
    loops: list[str] = []
    for line in answer.splitlines():
        text = " ".join(_MARKER.sub("", line).split())
        key = _plain(text)
        echoed = False
        for word in word_tokens(key):
            words.append(word)
            run = tuple(words[-_ECHO_WORDS:])
            if len(run) == _ECHO_WORDS:
                echoed = echoed or len(words) - runs.get(run, -_ECHO_SPAN) < _ECHO_SPAN
                runs[run] = len(words)
        if (
            (len(key.split()) >= 2 and key in seen)
            or echoed
            or _STUTTER.search(text)
            or _ANNOUNCE.match(text)
        ):
            loops.append(text)
        seen.add(key)
    return loops


_NEGATION = re.compile(r"\b(?:not|no|never|cannot|none|nothing|neither|nor)\b|n't\b", re.I)


@dataclass(frozen=True)
class _Claim:
    """What a text states, for comparison: its BM25 stems, identifiers, numbers, polarity."""

    stems: frozenset[int]
    identifiers: frozenset[str]
    numbers: frozenset[str]
    negated: bool
    text: str

    def __init__(self, text: str) -> None:
        object.__setattr__(self, "stems", frozenset(bm25_terms(text)) if text else frozenset())
        object.__setattr__(self, "identifiers", frozenset(identifiers(text)))
        object.__setattr__(self, "numbers", frozenset(numbers(text)))
        object.__setattr__(self, "negated", bool(_NEGATION.search(text)))
        object.__setattr__(self, "text", text)


@dataclass(frozen=True)
class _Unit:
    """A passage sentence, or a sentence and the next one that points back to it."""

    sentences: tuple[str, ...]
    """As written, without their definition label: what a reader finds in the passage."""
    claim: _Claim
    """What the sentences state."""
    framed: _Claim
    """What they say read with the passage's headings (and the definition label)."""


def _units(passage: Passage) -> list[_Unit]:
    """The passage's sentences, and the sentence pairs whose second points back."""
    pairs = sentence_labels(passage.text) or [("", passage.text)]
    plain = [s for _, s in pairs]
    read = [f"{label}: {s}" if label else s for label, s in pairs]
    texts: list[tuple[tuple[str, ...], str]] = [((s,), t) for s, t in zip(plain, read, strict=True)]
    texts += [
        ((plain[i], plain[i + 1]), f"{read[i]} {read[i + 1]}")
        for i in range(len(read) - 1)
        if POINTS_BACK.match(read[i + 1])
    ]
    heading = passage.hit.chunk.context
    return [
        _Unit(said, _Claim(t), _Claim(f"{heading}\n{t}" if heading else t)) for said, t in texts
    ]


def _supports(unit: _Unit, claim: _Claim, asked: _Claim, held: frozenset[int]) -> bool:
    sentence, framed = unit.claim, unit.framed
    added = claim.stems - asked.stems
    restated = claim.stems & asked.stems & held
    new_identifiers = {i for i in claim.identifiers if not mentions(asked.text, i)}
    new_numbers = claim.numbers - asked.numbers
    if not (added or new_identifiers or new_numbers or claim.negated != asked.negated):
        return False  # a restatement of the question
    if claim.negated != sentence.negated:
        return False
    if asked.stems and not asked.stems & framed.stems:
        return False  # the sentence is not about what was asked
    if new_numbers - framed.numbers:
        return False
    if any(not mentions(framed.text, i) for i in new_identifiers):
        return False
    for words in (added, restated):
        if words and len(words & framed.stems) < _MIN_COVERAGE * len(words):
            return False
    return True


def identifiers(text: str) -> list[str]:
    """The code names in ``text``, as written and in order: dotted names (``os.path.join``),
    names with an underscore or a digit (``max_connections``, ``copy2``), names in backticks
    (``open``, and whole with their hyphens: ``--dry-run``, ``make-docs``) and names called
    with parentheses (``copy()``)."""
    named: list[tuple[int, str]] = []
    quoted: set[str] = set()
    for match in re.finditer(r"`([^`\s]+)`", text):
        name = match.group(1).rstrip("()")
        quoted.add(name)
        if ("-" in name.strip("-") or name.startswith("-")) and any(c.isalnum() for c in name):
            named.append((match.start(1), name))
    for match in _IDENTIFIER.finditer(text):
        name = match.group(1).rstrip(".")
        called = text[match.end(1) : match.end(1) + 1] == "("
        coded = (
            ("." in name and all(name.split(".")))
            or "_" in name.strip("_")
            or any(c.isdigit() for c in name[1:])
            or called
            or name in quoted
        )
        if coded:
            named.append((match.start(1), name))
    found: list[str] = []
    for _, name in sorted(named):
        if name not in found:
            found.append(name)
    return found


def mentions(text: str, name: str) -> bool:
    """Whether ``text`` names ``name`` as a whole identifier, or as the tail of a longer dotted
    one (``ZipFile.extract`` in ``zipfile.ZipFile.extract``): ``copy`` is not in ``copy2`` or
    ``copyfile``. A dotted name is also mentioned by its last part when the text names the
    rest on its own (``os.path.join`` in "os.path ... join()")."""
    pattern = r"(?<!\w){}(?![\w])"
    if "-" in name:  # ``--dry-run`` or ``make-docs``: not a part of ``--dry-run-all``
        return bool(re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text))
    if re.search(pattern.format(re.escape(name)), text):
        return True
    head, _, last = name.rpartition(".")
    # The head must stand alone ("os.path —"), not open another name ("shutil.copy2").
    return bool(head) and bool(
        re.search(pattern.format(re.escape(last)), text)
        and re.search(rf"(?<![\w.]){re.escape(head)}(?![\w.])", text)
    )


_IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)")


def _claim_sentences(answer: str) -> list[str]:
    """Sentences with their trailing [n] markers attached ("... disk files. [2] Next ...")."""
    parts = re.split(r"(?<=[.!?])\s+(?!\[\d)|(?<=\])\s+(?=[A-Z])|\n+", answer.strip())
    return [p for p in parts if p.strip()]
