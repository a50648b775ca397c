"""Hits -> numbered context passages that fit the generator's token budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.types import Hit


@dataclass(frozen=True)
class Passage:
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


def render_context(passages: Sequence[Passage]) -> str:
    return "\n\n".join(p.render() for p in passages)
