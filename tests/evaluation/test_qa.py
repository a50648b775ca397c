from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.answering import Answerer
from rag.catalog import open_collection
from rag.chunking import chunk_id
from rag.config import Settings
from rag.errors import InvalidInputError
from rag.evaluation import evaluate_qa
from rag.evaluation.qa import QAItem, load_qa, qa_metrics, score_qa, source_matches, states
from rag.retrieval import HybridRetriever
from rag.types import Answer, Chunk, Citation
from tests.fakes import HashEmbedder, ScriptedGenerator


def answer(text: str, sources: list[str], abstained: bool = False) -> Answer:
    citations = [Citation(n, s, "", f"id{n}", 0.5, "quote") for n, s in enumerate(sources, 1)]
    return Answer(text, citations, abstained)


def test_source_matches_on_path_suffixes() -> None:
    assert source_matches("/docs/guide.md", ["guide.md"])
    assert source_matches("/docs/a/guide.md", ["a/guide.md", "other"])
    assert source_matches("/docs/guide.md", ["/docs/guide.md"])
    assert not source_matches("/docs/myguide.md", ["guide.md"])
    assert not source_matches("/docs/guide.md", [])


def test_score_qa_and_metrics() -> None:
    items = [
        QAItem("1", "q", ("a.txt",), ("Twenty Miles",)),
        QAItem("2", "q", ("b.txt",), ("blue",)),
        QAItem("3", "q", ("c.txt",), ("x",)),
        QAItem("4", "q", unanswerable=True),
        QAItem("5", "q", unanswerable=True),
    ]
    outcomes = [
        # right, cited only gold, retrieved gold
        score_qa(items[0], answer("It is twenty miles [1]", ["/d/a.txt"]), ["/d/z", "/d/a.txt"]),
        # wrong answer, cites a non-gold source too, gold retrieved at rank 6 only
        score_qa(items[1], answer("red [1][2]", ["/d/b.txt", "/d/z"]), ["/d/z"] * 5 + ["/d/b.txt"]),
        # wrongly abstained
        score_qa(items[2], answer("I could not find", [], abstained=True), ["/d/c.txt"]),
        score_qa(items[3], answer("I could not find", [], abstained=True), []),
        score_qa(items[4], answer("made up [1]", ["/d/a.txt"]), ["/d/a.txt"]),
    ]
    assert [o.correct for o in outcomes] == [True, False, False, False, False]
    assert [o.retrieval_hit for o in outcomes[:3]] == [True, False, True]
    assert [o.citations_correct for o in outcomes[:2]] == [True, False]
    metrics = qa_metrics(outcomes)
    assert metrics == {
        "retrieval_hit@5": pytest.approx(2 / 3),
        "answer_accuracy": pytest.approx(1 / 3),
        "citation_correctness": pytest.approx(1 / 2),  # over the 2 answered answerable ones
        "abstention_unanswerable": pytest.approx(1 / 2),
        "abstention_answerable": pytest.approx(1 / 3),
        "strict_accuracy": pytest.approx(1 / 3),
        "quoted": 0.0,
        "check_precision": None,  # nothing generated was given
        "check_recall": None,
    }
    assert qa_metrics([])["answer_accuracy"] is None


def test_a_generated_sentence_must_state_the_value_and_a_quote_counts_whole() -> None:
    assert states("The default is 4MB [1].", "4MB")
    assert not states("It is not 4MB.", "4MB")
    assert not states("It might be 4MB, but I am not sure.", "4MB")
    assert not states("Is it 4MB?", "4MB")
    assert not states("It could be 1MB, 4MB or 8MB.", "4MB")
    assert states("No.", "no") and not states("", "x")
    item = QAItem("1", "What is the default?", ("a.txt",), ("4MB",))
    mentioned = score_qa(item, answer("Not 4MB, it varies [1].", ["/d/a.txt"]), [])
    assert mentioned.correct and not mentioned.strictly_correct
    quote = answer("A long quote: values vary, it is not always 4MB. [1]", ["/d/a.txt"])
    quote.extractive = True
    quoted = score_qa(item, quote, [])
    assert quoted.correct and quoted.strictly_correct and quoted.quoted


def test_the_check_is_scored_against_what_the_model_wrote() -> None:
    item = QAItem("1", "What is the default?", ("a.txt",), ("4MB",))
    nothing = QAItem("2", "What is the moon made of?", unanswerable=True)
    passed_right = score_qa(item, answer("4MB [1]", ["/d/a.txt"]), [], generated="4MB [1]")
    replaced = answer("A quote saying 4MB. [1]", ["/d/a.txt"])
    replaced.extractive = True
    failed_right = score_qa(item, replaced, [], generated="The default is 4MB [1].")
    passed_wrong = score_qa(nothing, answer("Cheese [1]", ["/d/a.txt"]), [], generated="Cheese")
    assert [o.check_passed for o in (passed_right, failed_right, passed_wrong)] == [
        True,
        False,
        True,
    ]
    metrics = qa_metrics([passed_right, failed_right, passed_wrong])
    assert metrics["check_precision"] == pytest.approx(1 / 2)  # cheese passed, wrongly
    assert metrics["check_recall"] == pytest.approx(1 / 2)  # a right answer was replaced


def test_load_qa_validates_items(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text(
        '{"id": "a", "question": "Q?", "gold_sources": ["x.md"], "answers": ["y"]}\n\n'
        '{"id": "b", "question": "Unknown?", "unanswerable": true}\n'
    )
    items = load_qa(path)
    assert items[0] == QAItem("a", "Q?", ("x.md",), ("y",), False)
    assert items[1].unanswerable and items[1].answers == ()
    path.write_text('{"id": "c", "question": "Q?"}\n')
    with pytest.raises(InvalidInputError, match="no answers"):
        load_qa(path)


class WarmingGenerator(ScriptedGenerator):
    """Records how many prompts it had been given each time it was warmed up."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__(replies)
        self.prompts_when_warmed: list[int] = []

    def warm_up(self) -> None:
        self.prompts_when_warmed.append(len(self.prompts))


def test_evaluate_qa_through_the_answerer(tmp_path: Path, settings: Settings) -> None:
    embedder = HashEmbedder()
    store = open_collection(settings, embedder, create=True)
    texts = {
        "/docs/lighthouse.txt": "The lighthouse beam is visible from twenty nautical miles.",
        "/docs/coffee.txt": "Descale the espresso machine every month with citric acid.",
    }
    chunks = [
        Chunk(id=chunk_id(s, t, 0), source=s, title=Path(s).stem, text=t) for s, t in texts.items()
    ]
    store.upsert(chunks, np.stack([embedder.embed_query(c.text) for c in chunks]))
    path = tmp_path / "qa.jsonl"
    rows = [
        {
            "id": "beam",
            "question": "How far is the lighthouse beam visible?",
            "gold_sources": ["lighthouse.txt"],
            "answers": ["twenty nautical miles"],
        },
        {"id": "none", "question": "Who won the chess olympiad?", "unanswerable": True},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    generator = WarmingGenerator(["The beam is visible from twenty nautical miles [1]."])
    try:
        answerer = Answerer(HybridRetriever(embedder, store, settings), generator, settings)
        report = evaluate_qa(settings, path, answerer=answerer)
    finally:
        store.close()
    # The models are loaded before the first question is timed, as a service loads them.
    assert generator.prompts_when_warmed == [0] and report.timing["warm_up_ms"] >= 0
    assert "models loaded first" in report.table()
    assert report.questions == 2 and report.answerable == 1
    assert report.metrics["retrieval_hit@5"] == 1.0
    assert report.metrics["answer_accuracy"] == 1.0
    assert report.metrics["citation_correctness"] == 1.0
    assert report.metrics["abstention_unanswerable"] == 1.0
    assert report.metrics["abstention_answerable"] == 0.0
    assert "answer_accuracy" in report.table()
