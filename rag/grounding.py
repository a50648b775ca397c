"""Supporting sentences, and a check that a generated answer says only what its context says.

A small model often answers wrongly even with the right page in its context. So the answer is
checked against the passages: every number, and most content words, of every answer sentence
must appear in the passages it cites (in all of them when it cites none), and an answer that
loops or only announces itself fails outright. When the check fails the answer falls back to
quoting a passage chosen by its supporting sentences, which is always true to the documents.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from rag.context import Passage, Support
from rag.embedding import Embedder
from rag.text import content_words, labelled_sentences, numbers, word_tokens

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


def unsupported_claims(answer: str, passages: Sequence[Passage]) -> list[str]:
    """Answer sentences with a number, or too many content words, absent from their sources,
    then the answer's ``degenerate_lines``. Empty means the answer passes the check.

    A sentence that cites passages ([n]) is checked against those passages only, so a true
    statement attributed to the wrong source fails too; one without markers, against them all.
    An answer with no checkable sentence at all fails as a whole.
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
        if numbers(text) - vocabulary.numbers or coverage < _MIN_COVERAGE:
            claims.append(text.strip())
    if not said_something:  # "The answer is: [1]." states nothing checkable
        claims.append(answer)
    return claims + degenerate_lines(answer)


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
        key = text.lower().rstrip(".:")
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


class _Vocabulary:
    def __init__(self, text: str) -> None:
        self.words = content_words(text)
        self.numbers = numbers(text)


def _claim_sentences(answer: str) -> list[str]:
    """Sentences with their trailing [n] markers attached ("... disk files. [2] Next ...")."""
    parts = re.split(r"(?<=[.!?])\s+(?!\[\d)|(?<=\])\s+(?=[A-Z])|\n+", answer.strip())
    return [p for p in parts if p.strip()]
