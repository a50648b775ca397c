"""Follow-up retrieval scoring: the question as asked against the chat service's rewrite, over
the fakes on the real Edge store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.answering import Answerer
from rag.catalog import open_collection
from rag.chat import ChatService
from rag.chunking import chunk_id
from rag.config import Settings
from rag.errors import InvalidInputError
from rag.evaluation import load_followups, run_followups
from rag.retrieval import HybridRetriever
from rag.types import Chunk
from tests.fakes import HashEmbedder, ScriptedGenerator

LIGHTHOUSE = "The Lighthouse at Skerry Point lights its lamp at dusk, and its beam reaches far."
DESKS = [f"The lamp on desk {i} is lit when the office opens." for i in range(6)]


def _rows() -> list[dict[str, object]]:
    return [
        {
            "id": "lamp",
            "kind": "pronoun",
            "earlier": ["How far does the Lighthouse at Skerry Point shine?"],
            "question": "And when is its lamp lit?",
            "gold_sources": ["lighthouse.txt"],
        },
        {
            "id": "desk",
            "kind": "shift",
            "earlier": ["How far does the Lighthouse at Skerry Point shine?"],
            "question": "When is the lamp on desk 3 lit in the office?",
            "gold_sources": ["desk-3.txt"],
        },
    ]


def test_follow_ups_are_scored_as_asked_and_as_rewritten(
    tmp_path: Path, settings: Settings
) -> None:
    embedder = HashEmbedder()
    store = open_collection(settings, embedder, create=True)
    texts = {"/docs/lighthouse.txt": LIGHTHOUSE}
    texts |= {f"/docs/desk-{i}.txt": t for i, t in enumerate(DESKS)}
    chunks = [Chunk(id=chunk_id(s, t, 0), source=s, title="", text=t) for s, t in texts.items()]
    store.upsert(chunks, np.stack([embedder.embed_query(c.text) for c in chunks]))
    path = tmp_path / "followups.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    try:
        answerer = Answerer(
            HybridRetriever(embedder, store, settings), ScriptedGenerator(), settings
        )
        report = run_followups(ChatService(answerer, settings), load_followups(path))
    finally:
        store.close()
    lamp, desk = report.outcomes
    assert not lamp.raw_hit and lamp.rewritten_hit
    assert "Lighthouse" in lamp.rewritten and lamp.rewritten.endswith("And when is its lamp lit?")
    assert desk.raw_hit and desk.rewritten_hit and desk.rewritten == desk.question
    rates = report.rates()
    assert rates["all"] == {"conversations": 2, "raw_hit@5": 0.5, "rewritten_hit@5": 1.0}
    assert rates["pronoun"]["raw_hit@5"] == 0.0
    assert "rewritten hit@5" in report.table() and json.dumps(report.to_dict())


@pytest.mark.parametrize(
    "line", ['{"id": "x", "question": "q"}', "not json", '{"id": 1, "earlier": 3}']
)
def test_bad_rows_name_the_file_and_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "followups.jsonl"
    path.write_text(json.dumps(_rows()[0]) + "\n" + line + "\n")
    with pytest.raises(InvalidInputError, match=r"followups\.jsonl:2"):
        load_followups(path)


def test_the_bench_sets_hold_at_least_30_conversations_of_each_kind() -> None:
    folder = Path(__file__).parents[2] / "bench" / "qa"
    items = [i for f in sorted(folder.glob("*_followups.jsonl")) for i in load_followups(f)]
    assert len(items) >= 30 and len({i.id for i in items}) == len(items)
    assert {i.kind for i in items} == {"pronoun", "ellipsis", "shift"}
    assert all(i.earlier and i.gold_sources and i.question.strip() for i in items)
