"""Hits -> numbered context passages that fit the generator's token budget.

A passage's number ``n`` is what an answer cites as ``[n]``: it is given once, best hit
first, and kept when a passage is cut or reduced to some of its sentences, so a citation
always points at the whole chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.types import Hit


@dataclass(frozen=True)
class Passage:
    """A hit as shown in the prompt: its number, and its chunk's text or part of it."""

    n: int
    hit: Hit
    text: str

    def render(self) -> str:
        where = self.hit.chunk.context
        return f"[{self.n}] {where}\n{self.text}" if where else f"[{self.n}] {self.text}"


def build_passages(
    hits: Sequence[Hit], *, count_tokens: Callable[[str], int], budget: int
) -> list[Passage]:
    """Number the hits best first and keep what fits in ``budget`` tokens.

    The last passage that does not fit whole is cut at a word boundary when a useful part
    of it fits; everything after it is left out.
    """
    passages: list[Passage] = []
    used = 0
    for hit in hits:
        passage = Passage(len(passages) + 1, hit, hit.chunk.text)
        cost = count_tokens(passage.render()) + 2  # the blank line between passages
        if used + cost <= budget:
            passages.append(passage)
            used += cost
            continue
        room = budget - used - 2
        if room >= 48:
            words = hit.chunk.text.split()
            lo, hi = 0, len(words)
            while lo < hi:  # longest prefix of words that fits
                mid = (lo + hi + 1) // 2
                cut = Passage(passage.n, hit, " ".join(words[:mid]) + " ...")
                if count_tokens(cut.render()) <= room:
                    lo = mid
                else:
                    hi = mid - 1
            if lo:
                passages.append(Passage(passage.n, hit, " ".join(words[:lo]) + " ..."))
        break
    return passages


@dataclass(frozen=True)
class Support:
    """A context sentence ranked for how well it supports an answer to the question."""

    n: int
    """The number of the passage it comes from."""
    text: str
    score: float
    """Higher is better; comparable only among the sentences ranked for one question."""
    position: int = 0
    """Its order in the context, so chosen sentences can be shown as written."""


def render_context(passages: Sequence[Passage]) -> str:
    """The passages as the prompt shows them, a blank line between two."""
    return "\n\n".join(p.render() for p in passages)


def evidence_passages(
    passages: Sequence[Passage],
    support: Sequence[Support],
    *,
    count_tokens: Callable[[str], int],
    budget: int,
) -> list[Passage]:
    """The passages cut down to their supporting sentences, for a small, quickly read prompt.

    ``support`` is ranked best first; sentences are taken in that order while they fit in
    ``budget`` tokens, then shown in passage order and, within a passage, as written. A
    passage keeps its number, so citations still point at the whole chunk.
    """
    by_n = {p.n: p for p in passages}
    chosen: dict[int, list[Support]] = {}
    used = 0
    for sentence in support:
        passage = by_n.get(sentence.n)
        if passage is None:
            continue
        cost = count_tokens(sentence.text) + 1
        if sentence.n not in chosen:
            cost += count_tokens(Passage(passage.n, passage.hit, "").render()) + 2
        if used + cost > budget:
            continue  # a shorter, lower-ranked sentence may still fit
        chosen.setdefault(sentence.n, []).append(sentence)
        used += cost
    return [
        Passage(n, by_n[n].hit, " ".join(s.text for s in sorted(chosen[n], key=_position)))
        for n in sorted(chosen)
    ]


def _position(support: Support) -> int:
    return support.position
