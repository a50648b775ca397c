"""Follow-up questions: retrieval for the question as asked against the question as the chat
service rewrites it from the conversation.

A set is JSONL, one conversation a line: ``{"id", "kind", "earlier": [user questions...],
"question", "gold_sources": [...], "answers": [...]}``. ``kind`` says what makes the question
depend on the conversation ("pronoun", "ellipsis") or that it does not ("shift": a new topic,
which a rewrite must not spoil). Both searches are scored by hit@5: a gold source among the 5
best hits.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag.chat import ChatService
from rag.config import Settings
from rag.conversation import Turn
from rag.errors import InvalidInputError
from rag.evaluation.qa import source_matches

log = logging.getLogger(__name__)

_HIT_AT = 5


@dataclass(frozen=True)
class FollowUp:
    id: str
    kind: str
    earlier: tuple[str, ...]
    question: str
    gold_sources: tuple[str, ...]


@dataclass(frozen=True)
class FollowUpOutcome:
    id: str
    kind: str
    question: str
    rewritten: str
    """What the chat service searched for."""
    raw_hit: bool
    rewritten_hit: bool


@dataclass
class FollowUpReport:
    outcomes: list[FollowUpOutcome]

    def rates(self) -> dict[str, dict[str, float | int]]:
        """hit@5 of the raw and the rewritten question, for all and for each kind."""
        groups: dict[str, list[FollowUpOutcome]] = defaultdict(list)
        for outcome in self.outcomes:
            groups["all"].append(outcome)
            groups[outcome.kind].append(outcome)
        return {
            kind: {
                "conversations": len(items),
                "raw_hit@5": sum(o.raw_hit for o in items) / len(items),
                "rewritten_hit@5": sum(o.rewritten_hit for o in items) / len(items),
            }
            for kind, items in groups.items()
        }

    def to_dict(self) -> dict[str, Any]:
        return {"rates": self.rates(), "outcomes": [asdict(o) for o in self.outcomes]}

    def table(self) -> str:
        lines = [f"{'kind':<10} {'n':>3} {'raw hit@5':>10} {'rewritten hit@5':>16}"]
        for kind, rate in self.rates().items():
            lines.append(
                f"{kind:<10} {rate['conversations']:>3} {rate['raw_hit@5']:>10.3f} "
                f"{rate['rewritten_hit@5']:>16.3f}"
            )
        missed = [o for o in self.outcomes if not o.rewritten_hit]
        if missed:
            lines.append("missed after rewriting:")
            lines += [f"  {o.id}: {o.rewritten!r}" for o in missed]
        return "\n".join(lines)


def load_followups(path: Path) -> list[FollowUp]:
    items = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                items.append(
                    FollowUp(
                        id=str(row["id"]),
                        kind=str(row.get("kind", "")),
                        earlier=tuple(str(q) for q in row["earlier"]),
                        question=str(row["question"]),
                        gold_sources=tuple(str(s) for s in row["gold_sources"]),
                    )
                )
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InvalidInputError(f"{path}:{number}: not a follow-up row ({exc})") from None
    if not items:
        raise InvalidInputError(f"{path}: no conversations")
    return items


def run_followups(chat: ChatService, items: Sequence[FollowUp]) -> FollowUpReport:
    """Each follow-up searched alone, and as the chat service prepares it (the rewrite, and
    its retry with the conversation's topic when the question alone finds nothing)."""
    retriever = chat.answerer.retriever
    outcomes = []
    for item in items:
        raw = [h.chunk.source for h in retriever.search(item.question, k=_HIT_AT)]
        turns = [Turn("user", q) for q in item.earlier] + [Turn("user", item.question)]
        prepared = chat.prepare(turns)
        rewritten = [h.chunk.source for h in prepared.prepared.hits[:_HIT_AT]]
        outcome = FollowUpOutcome(
            id=item.id,
            kind=item.kind,
            question=item.question,
            rewritten=prepared.rewrite.query,
            raw_hit=any(source_matches(s, item.gold_sources) for s in raw),
            rewritten_hit=any(source_matches(s, item.gold_sources) for s in rewritten),
        )
        log.info(
            "follow-up %s: raw=%s rewritten=%s", item.id, outcome.raw_hit, outcome.rewritten_hit
        )
        outcomes.append(outcome)
    return FollowUpReport(outcomes)


def evaluate_followups(settings: Settings, path: Path) -> FollowUpReport:
    """Score the follow-ups of ``path`` on the configured collection."""
    from rag.query import open_answerer

    items = load_followups(path)
    with open_answerer(settings) as answerer:
        return run_followups(ChatService(answerer, settings), items)
