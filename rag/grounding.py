"""Supporting sentences, and a check that a generated answer says only what its context says.

A 135M-parameter model often answers wrongly even with the right page in its context. So the
answer is checked against the passages: every content word and every number of every answer
sentence must appear in the context. When the check fails the answer falls back to quoting
the sentences that best support an answer, which are always true to the documents.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.context import Passage
from rag.embedding import Embedder

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\n{2,}|\n(?=[-*•]\s)")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_'-]*|\d+(?:[.,:]\d+)*")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_MARKER = re.compile(r"\[\d{1,3}\]")
_MARKER_NUMBER = re.compile(r"\[(\d{1,3})\]")
_ANNOUNCE = re.compile(r"\W*the answer(?: to (?:your|the|this) question\b.*?)? is\b", re.I)
_STUTTER = re.compile(r"\b([A-Za-z]{3,})(?:\W+\1\b){2,}", re.IGNORECASE)
# A run of this many words said again within _ECHO_SPAN words: a small model looping
# mid-sentence ("... to create a mock object that can be used to create a mock object that
# can be"). A long answer of a larger model may well repeat a phrase further apart.
_ECHO_WORDS = 6
_ECHO_SPAN = 40
_MAX_SENTENCES = 80
_MIN_SENTENCE_CHARS = 20
_MAX_LABEL_CHARS = 60
_STOPWORDS = frozenset(
    """a an the and or but if then else of to in on at by for with from as is are was were be been
    being it its this that these those there here which who whom whose what when where why how
    can could may might must shall should will would do does did done not no yes so such than
    too very just also only into over under about after before between through during out up
    down off again further once all any both each few more most other some own same you your
    yours we our ours they their them he she his her i me my mine us answer question context
    passage passages according based provided information""".split()
)


@dataclass(frozen=True)
class Support:
    n: int
    text: str
    score: float
    position: int = 0  # order in the context, so chosen sentences can be shown as written


def split_sentences(text: str) -> list[str]:
    parts = (p.strip() for p in _SENTENCE_END.split(text))
    return [" ".join(p.split()) for p in parts if len(p) >= _MIN_SENTENCE_CHARS]


def labelled_sentences(text: str) -> list[str]:
    """Sentences, the first after a short label line carrying it: a definition list's term
    ("work_mem (integer)") is what the sentence below it is about."""
    sentences: list[str] = []
    label = ""
    blocks = re.split(r"\n\s*\n", text)
    for i, block in enumerate(blocks):
        line = " ".join(block.split())
        short = len(line) <= _MAX_LABEL_CHARS and not line.endswith((".", "!", "?", ":"))
        if line and short and i + 1 < len(blocks):
            label = line
            continue
        for k, sentence in enumerate(split_sentences(block)):
            sentences.append(f"{label}: {sentence}" if label and k == 0 else sentence)
        label = ""
    return sentences


def content_words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if w.lower() not in _STOPWORDS}


def supporting_sentences(
    question: str, passages: Sequence[Passage], embedder: Embedder, *, top: int = 2
) -> list[Support]:
    """The ``top`` context sentences closest to the question (embedding similarity + shared
    words), best first."""
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
        float(sim) + 0.3 * len(asked & content_words(framed)) / max(1, len(asked))
        for sim, (_, _, framed) in zip(similarity, candidates, strict=True)
    ]
    best = sorted(range(len(candidates)), key=lambda i: -scores[i])[:top]
    return [Support(candidates[i][0], candidates[i][1], scores[i], i) for i in best]


def unsupported_claims(answer: str, passages: Sequence[Passage]) -> list[str]:
    """Answer sentences with a number, or too many content words, absent from their sources.

    A sentence that cites passages ([n]) is checked against those passages only, so a true
    statement attributed to the wrong source fails too; one without markers, against them all.
    """
    by_n = {p.n: p for p in passages}
    everything = _Vocabulary(" ".join(p.text for p in passages))
    claims: list[str] = []
    said_something = False
    for sentence in _claim_sentences(answer):
        cited = [by_n[int(n)] for n in _MARKER_NUMBER.findall(sentence) if int(n) in by_n]
        vocabulary = _Vocabulary(" ".join(p.text for p in cited)) if cited else everything
        text = _MARKER.sub("", sentence)
        words = content_words(text)
        if not words:
            continue
        said_something = True
        coverage = len(words & vocabulary.words) / len(words)
        if set(_NUMBER.findall(text)) - vocabulary.numbers or coverage < 0.75:
            claims.append(text.strip())
    if not said_something:  # "The answer is: [1]." states nothing checkable
        claims.append(answer)
    return claims + degenerate_lines(answer)


def degenerate_lines(answer: str) -> list[str]:
    """Lines of a looping or template-filling answer: one said again ("The answer is:" ...
    "The answer is:"), a word said three times running ("lightweight, lightweight,
    lightweight"), a run of six words said again soon after, or a line that
    announces an answer ("The answer to your question is:"). On the dev set such answers copy
    words from the sources, so they pass the word check, yet 1 of the 16 the small model wrote
    in session 4 was right; in session 6, 1 of the 5 that announce themselves, and that one by
    repeating a heading; in session 7 none of the 4 that passed, each saying six or more words
    twice ("__str__ returns a string representation of the object, while __repr__ returns a
    string representation of the object")."""
    seen: set[str] = set()
    runs: dict[tuple[str, ...], int] = {}  # a run of words -> where it last ended
    words: list[str] = []
    loops: list[str] = []
    for line in answer.splitlines():
        text = " ".join(_MARKER.sub("", line).split())
        key = text.lower().rstrip(".:")
        echoed = False
        for word in _WORD.findall(key):
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


class _Vocabulary:
    def __init__(self, text: str) -> None:
        self.words = content_words(text)
        self.numbers = set(_NUMBER.findall(text))


def _claim_sentences(answer: str) -> list[str]:
    """Sentences with their trailing [n] markers attached ("... disk files. [2] Next ...")."""
    parts = re.split(r"(?<=[.!?])\s+(?!\[\d)|(?<=\])\s+(?=[A-Z])|\n+", answer.strip())
    return [p for p in parts if p.strip()]


_NAME = re.compile(r"@?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+)([A-Za-z_][\w.]*)")


def named_terms(question: str) -> list[str]:
    """What a question names: identifiers (``sys.monitoring``, ``max_connections``), mixed-case
    and upper-case names (``NumPy``, ``AWS``), and capitalized words inside a sentence
    (``Django``). Plain words are left out; so are capitals of a Title Case question."""
    words = [w.lstrip("@") for w in _NAME.findall(question)]
    starts = {m.group(1) for m in _SENTENCE_START.finditer(question)}
    title_case = sum(w[:1].isupper() for w in words) > len(words) / 2
    names: list[str] = []
    for word in words:
        identifier = ("." in word and min(map(len, word.split("."))) > 1) or "_" in word.strip("_")
        mixed_case = any(c.isupper() for c in word[1:])
        capitalized = (
            word[:1].isupper()
            and len(word) > 1
            and not title_case
            and word not in starts
            and word.lower() not in _STOPWORDS
        )
        if (identifier or mixed_case or capitalized) and word not in names:
            names.append(word)
    return names


# Word-forming prefixes and inflections the BM25 stemmer does not take off: "subfolders" is
# known when "folders" is, "sown" when "sow" is.
_DERIVING_PREFIXES = ("auto", "multi", "non", "over", "pre", "re", "sub", "un")
_INFLECTIONS = ("ing", "ers", "est", "ed", "en", "er", "es", "ly", "d", "n", "s")


def lookup_words(question: str) -> list[str]:
    """The question's words worth looking up in the collection's vocabulary: content words
    of three letters or more that are not numbers, in order."""
    seen: list[str] = []
    for word in _WORD.findall(question):
        w = word.lower().strip("'-_")
        if len(w) >= 3 and not w[0].isdigit() and w not in _STOPWORDS and w not in seen:
            seen.append(w)
    return seen


def word_bases(word: str) -> list[str]:
    """What the word may be derived from: without a word-forming prefix ("subfolders" ->
    "folders") or an inflection ("sown" -> "sow"), keeping at least 3-4 letters."""
    bases = [
        word[len(p) :].lstrip("-")
        for p in _DERIVING_PREFIXES
        if word.startswith(p) and len(word) - len(p) >= 4
    ]
    bases += [word[: -len(s)] for s in _INFLECTIONS if word.endswith(s) and len(word) - len(s) >= 3]
    return bases


def unmentioned_terms(question: str, texts: Sequence[str]) -> list[str]:
    """The question's named terms that none of ``texts`` mention, as whole words.

    Names with two or more capitals are matched as written (``AWS`` is not asyncio's ``aws``
    argument); others in any case. A name followed by ``/`` and a word heads a path, which is
    no mention of it: 'Australia/Melbourne' is a time zone. A question naming something the
    retrieved passages never mention is one the documents most likely cannot answer.
    """
    joined = "\n".join(texts)
    lowered = joined.lower()
    missing = []
    for term in named_terms(question):
        exact = sum(c.isupper() for c in term) >= 2
        pattern = rf"(?<![\w.]){re.escape(term if exact else term.lower())}(?![\w]|/\w)"
        if not re.search(pattern, joined if exact else lowered):
            missing.append(term)
    return missing
