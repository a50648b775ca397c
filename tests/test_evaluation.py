from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ingest.chunking import chunk_id
from rag.answering import Answerer
from rag.config import Settings
from rag.errors import InvalidInputError
from rag.evaluation import (
    QAItem,
    evaluate_qa,
    evaluate_retrieval,
    load_beir,
    load_qa,
    mrr_at_k,
    ndcg_at_k,
    percentile,
    qa_metrics,
    rank_documents,
    rank_hits,
    recall_at_k,
    retrieval_metrics,
    rrf_fuse,
    score_qa,
    source_matches,
)
from rag.retrieval import HybridRetriever
from rag.runtime import open_collection
from rag.types import Answer, Chunk, Citation, Document, Hit, Section
from tests.fakes import HashEmbedder, ScriptedGenerator

# --- retrieval metrics --------------------------------------------------------------------


def test_ndcg_uses_graded_gains_and_the_ideal_order_of_the_qrels() -> None:
    qrels = {"a": 2, "b": 1, "c": 0}
    # Ranking: x (0), b (1), a (2); DCG = 1/log2(3) + 2/log2(4); IDCG = 2/1 + 1/log2(3).
    expected = (1 / math.log2(3) + 2 / 2) / (2 + 1 / math.log2(3))
    assert ndcg_at_k(["x", "b", "a"], qrels, 10) == pytest.approx(expected)
    assert ndcg_at_k(["a", "b", "x"], qrels, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], qrels, 10) == 0.0
    # Beyond the cutoff nothing counts; IDCG is cut too.
    assert ndcg_at_k(["x", "a"], qrels, 1) == 0.0
    assert ndcg_at_k(["a"], {"a": 1, "b": 1}, 1) == pytest.approx(1.0)


def test_ndcg_with_no_relevant_documents_is_zero() -> None:
    assert ndcg_at_k(["a"], {"a": 0}, 10) == 0.0


def test_recall_and_mrr() -> None:
    qrels = {"a": 1, "b": 1, "c": 1, "z": 0}
    ranking = ["x", "a", "z", "b"] + [f"n{i}" for i in range(200)] + ["c"]
    assert recall_at_k(ranking, qrels, 2) == pytest.approx(1 / 3)
    assert recall_at_k(ranking, qrels, 10) == pytest.approx(2 / 3)
    assert recall_at_k(ranking, qrels, 1000) == pytest.approx(1.0)
    assert mrr_at_k(ranking, qrels, 10) == pytest.approx(1 / 2)
    assert mrr_at_k(["z", "x"], qrels, 10) == 0.0  # grade 0 is not relevant
    assert mrr_at_k(["x"] * 10 + ["a"], qrels, 10) == 0.0


def test_retrieval_metrics_average_over_queries_with_relevant_documents() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}
    run = {"q1": ["a"], "q3": ["c"]}  # q2 retrieved nothing; q3 has no relevant doc
    metrics = retrieval_metrics(run, qrels)
    assert metrics == {
        "ndcg@10": pytest.approx(0.5),
        "recall@10": pytest.approx(0.5),
        "recall@100": pytest.approx(0.5),
        "mrr@10": pytest.approx(0.5),
    }


def test_documents_are_ranked_by_their_best_chunk() -> None:
    scored = [("long", 0.9), ("short", 0.8), ("long", 0.1), ("long", 0.05), ("other", 0.8)]
    assert rank_documents(scored) == ["long", "short", "other"]  # a tie keeps first seen
    assert rank_documents(scored, limit=2) == ["long", "short"]
    # Summing the top chunks favours documents with several good chunks.
    many = [("a", 0.6), ("b", 0.5), ("b", 0.4), ("a", 0.01)]
    assert rank_documents(many, pooling="max") == ["a", "b"]
    assert rank_documents(many, pooling="sum2") == ["b", "a"]


def test_rank_hits_pools_chunks_by_source() -> None:
    def hit(source: str, score: float) -> Hit:
        chunk = Chunk(id=chunk_id(source, str(score), 0), source=source, title="", text="t")
        return Hit(chunk=chunk, score=score, similarity=score)

    assert rank_hits([hit("d1", 0.3), hit("d2", 0.2), hit("d1", 0.1), hit("d3", 0.05)]) == [
        "d1",
        "d2",
        "d3",
    ]


def test_rrf_fuse_matches_qdrants_formula() -> None:
    # Qdrant: 1 / ((position + 1) / weight + k - 1), position from 0.
    fused = dict(rrf_fuse([["a", "b"], ["b", "c"]], k=60))
    assert fused["b"] == pytest.approx(1 / 61 + 1 / 60)
    assert fused["a"] == pytest.approx(1 / 60)
    weighted = dict(rrf_fuse([["a", "x"], ["b"]], k=2, weights=[2.0, 1.0]))
    assert weighted == {"a": pytest.approx(1 / 1.5), "x": pytest.approx(0.5), "b": 0.5}


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([3.0], 95) == 3.0
    assert percentile([], 50) == 0.0


# --- BEIR loading and an end-to-end run ---------------------------------------------------

TINY_CORPUS = [
    ("d1", "Lighthouses", "The lighthouse beam is visible from twenty nautical miles at sea."),
    ("d2", "Coffee machines", "Descale the espresso machine every month with citric acid."),
    ("d3", "Volcanoes", "Basaltic lava flows from shield volcanoes such as Mauna Loa."),
    ("d4", "Bees", "Honey bees communicate the direction of flowers with a waggle dance."),
    ("d5", "", "Penguins huddle together to survive the antarctic winter storms."),
]
TINY_QUERIES = {
    "1": "how far is the lighthouse beam visible",
    "2": "how often to descale an espresso machine",
    "3": "waggle dance of honey bees",
    "4": "penguins antarctic winter",
    "9": "a query with no qrels",
}


def write_beir(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as f:
        for doc_id, title, text in TINY_CORPUS:
            f.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as f:
        for qid, text in TINY_QUERIES.items():
            f.write(json.dumps({"_id": qid, "text": text, "metadata": {}}) + "\n")
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n1\td1\t1\n2\td2\t2\n2\td1\t0\n3\td4\t1\n4\td5\t1\n"
    )
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n")
    return folder


def test_load_beir(tmp_path: Path) -> None:
    dataset = load_beir(write_beir(tmp_path / "tiny"), "test")
    assert len(dataset.corpus) == 5 and dataset.corpus["d1"].title == "Lighthouses"
    assert dataset.queries["9"] == "a query with no qrels"
    assert dataset.qrels["2"] == {"d2": 2, "d1": 0}
    assert dataset.evaluated_queries == ["1", "2", "3", "4"]
    assert load_beir(tmp_path / "tiny", "train").evaluated_queries == ["1"]
    with pytest.raises(InvalidInputError, match=r"dev\.tsv"):
        load_beir(tmp_path / "tiny", "dev")


def test_evaluate_retrieval_end_to_end_with_the_real_store(
    tmp_path: Path, settings: Settings
) -> None:
    dataset = write_beir(tmp_path / "tiny")
    embedder = HashEmbedder()
    report = evaluate_retrieval(
        settings, dataset, "test", collection="tiny", embedder=embedder, chunk_k=20
    )
    assert report.queries == 4 and report.ingest.chunks_embedded == report.ingest.chunks >= 5
    assert [r.mode for r in report.results] == ["hybrid", "dense", "bm25"]
    for result in report.results:
        assert result.metrics["ndcg@10"] == pytest.approx(1.0), result.mode
        assert result.run["1"][0] == "d1"
        assert result.timing["queries"] == 4
    assert "hybrid" in report.table() and "ndcg@10" in json.dumps(report.to_dict())

    calls = len(embedder.calls)
    again = evaluate_retrieval(
        settings, dataset, "test", collection="tiny", embedder=embedder, reuse=True, chunk_k=20
    )
    assert again.ingest.reused and again.ingest.chunks_embedded == 0
    assert len(embedder.calls) == calls  # nothing re-embedded
    assert [r.metrics for r in again.results] == [r.metrics for r in report.results]


def test_evaluation_never_touches_a_collection_of_ingested_documents(
    tmp_path: Path, settings: Settings
) -> None:
    from rag.runtime import state_path

    state = state_path(settings, "default")
    state.parent.mkdir(parents=True)
    state.write_bytes(b"")
    with pytest.raises(InvalidInputError, match="holds ingested documents"):
        evaluate_retrieval(
            settings, write_beir(tmp_path / "tiny"), collection="default", embedder=HashEmbedder()
        )


# --- QA -----------------------------------------------------------------------------------


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
    }
    assert qa_metrics([])["answer_accuracy"] is None


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
    generator = ScriptedGenerator(["The beam is visible from twenty nautical miles [1]."])
    try:
        answerer = Answerer(HybridRetriever(embedder, store, settings), generator, settings)
        report = evaluate_qa(settings, path, answerer=answerer)
    finally:
        store.close()
    assert report.questions == 2 and report.answerable == 1
    assert report.metrics["retrieval_hit@5"] == 1.0
    assert report.metrics["answer_accuracy"] == 1.0
    assert report.metrics["citation_correctness"] == 1.0
    assert report.metrics["abstention_unanswerable"] == 1.0
    assert report.metrics["abstention_answerable"] == 0.0
    assert "answer_accuracy" in report.table()


def test_corpus_documents_use_the_doc_id_as_source() -> None:
    from rag.evaluation import CorpusDoc, corpus_documents

    docs = list(corpus_documents([CorpusDoc("7", " T ", "body"), CorpusDoc("8", "", "")]))
    assert docs == [Document(source="7", title="T", sections=(Section("body"),))]


def test_cli_eval_names_a_missing_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from rag.cli import app

    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["eval", "retrieval", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "corpus.jsonl: no such file" in result.output
    result = CliRunner().invoke(app, ["eval", "qa", str(tmp_path / "qa.jsonl")])
    assert result.exit_code == 2 and "no such file" in result.output
