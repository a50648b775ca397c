"""Answer quality: every question of a QA set goes through ``Answerer.ask`` and is scored.

A QA set is JSONL, one question per line, with its gold sources and acceptable answers, or
marked ``unanswerable``. Scoring is by string containment and source paths, so it needs no
judge model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import InvalidInputError
from rag.evaluation.jsonl import read_jsonl
from rag.evaluation.metrics import timing_summary

if TYPE_CHECKING:
    from rag.answering import Answerer
    from rag.config import Settings
    from rag.types import Answer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    gold_sources: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()
    unanswerable: bool = False


def load_qa(path: Path) -> list[QAItem]:
    """``{"id", "question", "gold_sources": [...], "answers": [...], "unanswerable": bool}``
    per line."""
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such file")
    items = []
    for number, row in enumerate(read_jsonl(path), 1):
        if not str(row.get("question") or "").strip():
            raise InvalidInputError(f"{path}: item {number} has no question")
        unanswerable = bool(row.get("unanswerable", False))
        answers = tuple(str(a) for a in row.get("answers") or ())
        if not unanswerable and not answers:
            raise InvalidInputError(f"{path}: item {number} is answerable but has no answers")
        items.append(
            QAItem(
                id=str(row.get("id", number)),
                question=str(row["question"]),
                gold_sources=tuple(str(s) for s in row.get("gold_sources") or ()),
                answers=answers,
                unanswerable=unanswerable,
            )
        )
    return items


def source_matches(source: str, gold: Sequence[str]) -> bool:
    """A source matches a gold entry when its path ends with it, on a path boundary
    ("guide.md" matches "/docs/guide.md", not "/docs/myguide.md")."""
    for entry in gold:
        entry = entry.strip()
        if entry and (source == entry or source.endswith("/" + entry.lstrip("/"))):
            return True
    return False


@dataclass
class QAOutcome:
    id: str
    answerable: bool
    retrieval_hit: bool
    abstained: bool
    correct: bool
    citations_correct: bool
    cited_sources: list[str]
    seconds: float
    answer: str = ""


def score_qa(
    item: QAItem, answer: Answer, retrieved_sources: Sequence[str], seconds: float = 0.0
) -> QAOutcome:
    """One question's outcome. ``retrieved_sources``: the sources of the top-5 chunks."""
    cited = [c.source for c in answer.citations]
    text = answer.answer.casefold()
    correct = (
        not item.unanswerable
        and not answer.abstained
        and any(a.strip() and a.strip().casefold() in text for a in item.answers)
    )
    return QAOutcome(
        id=item.id,
        answerable=not item.unanswerable,
        retrieval_hit=any(source_matches(s, item.gold_sources) for s in retrieved_sources[:5]),
        abstained=answer.abstained,
        correct=correct,
        citations_correct=bool(cited) and all(source_matches(s, item.gold_sources) for s in cited),
        cited_sources=cited,
        seconds=seconds,
        answer=answer.answer,
    )


def qa_metrics(outcomes: Sequence[QAOutcome]) -> dict[str, float | None]:
    """Rates over the questions each one concerns; None when there are no such questions.

    - ``retrieval_hit@5``: answerable questions with a gold source among the top-5 chunks;
    - ``answer_accuracy``: answerable questions whose answer holds an acceptable string
      (an abstention counts as wrong);
    - ``citation_correctness``: answered answerable questions whose every cited source is a
      gold source;
    - ``abstention_unanswerable``: unanswerable questions abstained on (higher is better);
    - ``abstention_answerable``: answerable questions wrongly abstained on (lower is better).
    """
    answerable = [o for o in outcomes if o.answerable]
    unanswerable = [o for o in outcomes if not o.answerable]
    answered = [o for o in answerable if not o.abstained]

    def rate(items: Sequence[QAOutcome], hit: Callable[[QAOutcome], bool]) -> float | None:
        return sum(1 for o in items if hit(o)) / len(items) if items else None

    return {
        "retrieval_hit@5": rate(answerable, lambda o: o.retrieval_hit),
        "answer_accuracy": rate(answerable, lambda o: o.correct),
        "citation_correctness": rate(answered, lambda o: o.citations_correct),
        "abstention_unanswerable": rate(unanswerable, lambda o: o.abstained),
        "abstention_answerable": rate(answerable, lambda o: o.abstained),
    }


@dataclass
class QAReport:
    questions: int
    answerable: int
    metrics: dict[str, float | None]
    timing: dict[str, float]
    outcomes: list[QAOutcome]

    def to_dict(self) -> dict[str, Any]:
        return {
            "questions": self.questions,
            "answerable": self.answerable,
            "metrics": self.metrics,
            "timing": self.timing,
            "outcomes": [asdict(o) for o in self.outcomes],
        }

    def table(self) -> str:
        lines = [
            f"{self.questions} questions ({self.answerable} answerable, "
            f"{self.questions - self.answerable} unanswerable)"
        ]
        for name, value in self.metrics.items():
            shown = "n/a" if value is None else f"{value:.3f}"
            lines.append(f"  {name:<24} {shown:>6}")
        t = self.timing
        lines.append(f"  per question: p50 {t['p50_ms']:.0f} ms, p95 {t['p95_ms']:.0f} ms")
        return "\n".join(lines)


def run_qa(answerer: Answerer, items: Sequence[QAItem]) -> QAReport:
    """Ask every question through ``Answerer.ask``; hit@5 from a separate top-5 search, which
    the timing leaves out."""
    outcomes = []
    for item in items:
        hits = answerer.retriever.search(item.question, k=5)
        started = time.perf_counter()
        answer = answerer.ask(item.question)
        seconds = time.perf_counter() - started
        outcome = score_qa(item, answer, [h.chunk.source for h in hits], seconds)
        log.info("qa %s: correct=%s abstained=%s", item.id, outcome.correct, outcome.abstained)
        outcomes.append(outcome)
    return QAReport(
        questions=len(items),
        answerable=sum(1 for i in items if not i.unanswerable),
        metrics=qa_metrics(outcomes),
        timing=timing_summary([o.seconds for o in outcomes]),
        outcomes=outcomes,
    )


def evaluate_qa(
    settings: Settings,
    questions_path: Path,
    *,
    collection: str | None = None,
    answerer: Answerer | None = None,
) -> QAReport:
    """Answer every question of ``questions_path`` from ``collection`` (default: the
    configured one) and score the answers; an ``answerer`` given is used as it is."""
    items = load_qa(questions_path)
    if answerer is not None:
        return run_qa(answerer, items)
    from rag.config import validate_collection_name
    from rag.query import open_answerer

    if collection is not None:
        settings = settings.model_copy(update={"collection": validate_collection_name(collection)})
    with open_answerer(settings) as opened:
        return run_qa(opened, items)
