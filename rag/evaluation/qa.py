"""Answer quality: every question of a QA set goes through ``Answerer.ask`` and is scored.

A QA set is JSONL, one question per line, with its gold sources and acceptable answers, or
marked ``unanswerable``. Scoring is by string containment and source paths, so it needs no
judge model: an answer is correct when it holds an acceptable string, and strictly correct
when a quote holds it (the quote is the answer) or a generated sentence states it, not merely
mentions it (negated, hedged, asked back, or one of a list of alternatives).
"""

from __future__ import annotations

import logging
import re
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
    strictly_correct: bool = False
    quoted: bool = False
    generated: str = ""
    """What the language model wrote, before the check (empty when quoting or abstaining)."""
    check_passed: bool | None = None
    """Whether the generated text passed the claim check (None when nothing was generated)."""
    generated_correct: bool = False
    """Whether the generated text strictly states an acceptable answer."""


_HEDGE = re.compile(
    r"\b(?:not|no|never|cannot|may|might|maybe|perhaps|possibly|unclear|unsure)\b|n't\b", re.I
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def states(text: str, expected: str) -> bool:
    """Whether a sentence of ``text`` states ``expected``: holds it, and is not a question, not
    negated or hedged (unless ``expected`` itself is), and not a list of three or more
    alternatives ("1 MB, 4 MB or 8 MB")."""
    wanted = expected.strip().casefold()
    if not wanted:
        return False
    for sentence in _SENTENCE.split(text):
        said = sentence.casefold()
        if wanted not in said or said.rstrip().endswith("?"):
            continue
        if _HEDGE.search(said) and not _HEDGE.search(wanted):
            continue
        if re.search(r",[^,.]*\bor\b", said) and "," not in wanted:
            continue
        return True
    return False


def holds(text: str, answers: Sequence[str]) -> bool:
    folded = text.casefold()
    return any(a.strip() and a.strip().casefold() in folded for a in answers)


def score_qa(
    item: QAItem,
    answer: Answer,
    retrieved_sources: Sequence[str],
    seconds: float = 0.0,
    generated: str | None = None,
) -> QAOutcome:
    """One question's outcome. ``retrieved_sources``: the sources of the top-5 chunks;
    ``generated``: what the model wrote before the check, when it wrote anything."""
    cited = [c.source for c in answer.citations]
    answered = not item.unanswerable and not answer.abstained
    correct = answered and holds(answer.answer, item.answers)
    strict = correct and (answer.extractive or any(states(answer.answer, a) for a in item.answers))
    wrote = bool(generated and generated.strip()) and not answer.abstained
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
        strictly_correct=strict,
        quoted=answer.extractive,
        generated=generated or "",
        check_passed=(not answer.extractive) if wrote else None,
        generated_correct=wrote
        and not item.unanswerable
        and any(states(generated or "", a) for a in item.answers),
    )


def qa_metrics(outcomes: Sequence[QAOutcome]) -> dict[str, float | None]:
    """Rates over the questions each one concerns; None when there are no such questions.

    - ``retrieval_hit@5``: answerable questions with a gold source among the top-5 chunks;
    - ``answer_accuracy``: answerable questions whose answer holds an acceptable string
      (an abstention counts as wrong);
    - ``citation_correctness``: answered answerable questions whose every cited source is a
      gold source;
    - ``abstention_unanswerable``: unanswerable questions abstained on (higher is better);
    - ``abstention_answerable``: answerable questions wrongly abstained on (lower is better);
    - ``strict_accuracy``: answerable questions answered by a quote that holds an acceptable
      string or by a generated sentence that states one;
    - ``quoted``: answered questions whose answer is a quote;
    - ``check_precision``: generated answers that passed the claim check and state an
      acceptable answer, over all that passed (an unanswerable question's never does);
    - ``check_recall``: generated answers that state an acceptable answer and passed the
      check, over all that state one.
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
        "strict_accuracy": rate(answerable, lambda o: o.strictly_correct),
        "quoted": rate([o for o in outcomes if not o.abstained], lambda o: o.quoted),
        "check_precision": rate(
            [o for o in outcomes if o.check_passed], lambda o: o.generated_correct
        ),
        "check_recall": rate(
            [o for o in outcomes if o.generated_correct], lambda o: bool(o.check_passed)
        ),
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
        lines.append(f"  models loaded first in {t['warm_up_ms']:.0f} ms")
        return "\n".join(lines)


def run_qa(answerer: Answerer, items: Sequence[QAItem]) -> QAReport:
    """Answer every question as ``Answerer.ask`` does (prepare, generate, check), keeping what
    the model wrote for the check's figures; hit@5 from a separate top-5 search, which the
    timing leaves out. The models are loaded first, as a service loads them when it starts,
    and the time that takes is ``timing['warm_up_ms']``, not the first question's."""
    started = time.perf_counter()
    answerer.warm_up()
    warm_up_ms = (time.perf_counter() - started) * 1000
    outcomes = []
    for item in items:
        hits = answerer.retriever.search(item.question, k=5)
        started = time.perf_counter()
        prepared = answerer.prepare(item.question)
        generated = "" if prepared.abstained else "".join(answerer.stream(prepared))
        answer = answerer.finish(prepared, generated)
        seconds = time.perf_counter() - started
        sources = [h.chunk.source for h in hits]
        outcome = score_qa(item, answer, sources, seconds, generated)
        log.info("qa %s: correct=%s abstained=%s", item.id, outcome.correct, outcome.abstained)
        outcomes.append(outcome)
    return QAReport(
        questions=len(items),
        answerable=sum(1 for i in items if not i.unanswerable),
        metrics=qa_metrics(outcomes),
        timing={**timing_summary([o.seconds for o in outcomes]), "warm_up_ms": warm_up_ms},
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
