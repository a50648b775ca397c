"""Evaluation: retrieval quality on BEIR datasets, answer quality on a QA set, with timings.

Retrieval (``evaluate_retrieval``): a BEIR corpus (``corpus.jsonl``, ``queries.jsonl``,
``qrels/SPLIT.tsv``) is chunked, embedded and upserted through the real pipeline into a
collection, each corpus row becoming a ``Document`` whose source is the doc id. Every query
retrieves chunks; a document scores as its best chunk (max pooling), and the document ranking
is scored with nDCG@10 (graded gains, as BEIR / pytrec_eval), Recall@10, Recall@100, MRR@10.

Modes: ``hybrid`` is the production path (``HybridRetriever``: dense + BM25 fused by RRF in
Qdrant); ``dense`` and ``bm25`` query a single vector of the collection directly.

QA (``evaluate_qa``): questions in JSONL, each with gold sources and acceptable answers or
``unanswerable``; every question goes through ``Answerer.ask``.

The metric functions are pure, so they are tested on hand-made runs.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rag.errors import CollectionNotFoundError, InvalidInputError
from rag.types import Document, Hit, Section

if TYPE_CHECKING:
    from rag.answering import Answerer
    from rag.config import Settings
    from rag.embedding import Embedder
    from rag.rerank import Reranker
    from rag.store.base import VectorStore
    from rag.types import Answer, Chunk

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "bm25")
Qrels = Mapping[str, Mapping[str, int]]
"""query id -> {doc id: graded relevance}; a grade of 0 or less is not relevant."""
Run = Mapping[str, Sequence[str]]
"""query id -> doc ids, best first."""

# HybridRetriever refuses k > 100; the single-vector modes may ask for more.
MAX_RETRIEVER_K = 100


# --- BEIR datasets ------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusDoc:
    id: str
    title: str
    text: str


@dataclass
class BeirDataset:
    corpus: dict[str, CorpusDoc]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    @property
    def evaluated_queries(self) -> list[str]:
        """Queries of the split that have at least one relevant document and a text."""
        return [
            q
            for q in sorted(self.qrels, key=_natural)
            if q in self.queries and any(g > 0 for g in self.qrels[q].values())
        ]


def _natural(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (1 << 62, key)


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path}:{number}: not JSON: {exc}") from exc
            if not isinstance(row, dict):
                raise InvalidInputError(f"{path}:{number}: expected a JSON object")
            yield row


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query-id corpus-id score`` (tab-separated, with a header line)."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for number, row in enumerate(reader, 1):
            if not row or (number == 1 and row[0] == "query-id"):
                continue
            if len(row) < 3:
                raise InvalidInputError(f"{path}:{number}: expected query-id, corpus-id, score")
            qrels.setdefault(row[0], {})[row[1]] = int(float(row[2]))
    return qrels


def load_beir(dataset_dir: Path, split: str = "test") -> BeirDataset:
    """A BEIR dataset folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv."""
    qrels_path = dataset_dir / "qrels" / f"{split}.tsv"
    for path in (dataset_dir / "corpus.jsonl", dataset_dir / "queries.jsonl", qrels_path):
        if not path.is_file():
            raise InvalidInputError(f"{path}: no such file (expected a BEIR dataset folder)")
    corpus = {
        str(r["_id"]): CorpusDoc(str(r["_id"]), str(r.get("title") or ""), str(r.get("text") or ""))
        for r in _read_jsonl(dataset_dir / "corpus.jsonl")
    }
    queries = {str(r["_id"]): str(r["text"]) for r in _read_jsonl(dataset_dir / "queries.jsonl")}
    return BeirDataset(corpus, queries, load_qrels(qrels_path))


def corpus_documents(corpus: Iterable[CorpusDoc]) -> Iterator[Document]:
    """One Document per corpus row: source = doc id, the title as the document's title."""
    for doc in corpus:
        text = doc.text.strip() or doc.title.strip()
        if text:
            yield Document(source=doc.id, title=doc.title.strip(), sections=(Section(text),))


# --- retrieval metrics (pure) -------------------------------------------------------------


def dcg(gains: Sequence[float]) -> float:
    """Sum of gain / log2(rank + 1), ranks from 1 (as trec_eval's ndcg_cut)."""
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, 1))


def ndcg_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    ideal = dcg(sorted((g for g in relevant.values() if g > 0), reverse=True)[:k])
    if ideal <= 0:
        return 0.0
    gains = [max(relevant.get(doc, 0), 0) for doc in ranking[:k]]
    return dcg(gains) / ideal


def recall_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    wanted = {d for d, g in relevant.items() if g > 0}
    if not wanted:
        return 0.0
    return len(wanted.intersection(ranking[:k])) / len(wanted)


def mrr_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    for rank, doc in enumerate(ranking[:k], 1):
        if relevant.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def retrieval_metrics(run: Run, qrels: Qrels) -> dict[str, float]:
    """Means over the queries with at least one relevant document (a query missing from the
    run counts as retrieving nothing)."""
    queries = [q for q, rel in qrels.items() if any(g > 0 for g in rel.values())]
    if not queries:
        return {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    per_query = {
        "ndcg@10": [ndcg_at_k(run.get(q, ()), qrels[q], 10) for q in queries],
        "recall@10": [recall_at_k(run.get(q, ()), qrels[q], 10) for q in queries],
        "recall@100": [recall_at_k(run.get(q, ()), qrels[q], 100) for q in queries],
        "mrr@10": [mrr_at_k(run.get(q, ()), qrels[q], 10) for q in queries],
    }
    return {name: statistics.fmean(values) for name, values in per_query.items()}


Pooling = Literal["max", "sum2", "sum3"]


def rank_documents(
    scored: Iterable[tuple[str, float]], *, pooling: Pooling = "max", limit: int | None = None
) -> list[str]:
    """Doc ids best first, from (doc id, chunk score) pairs.

    ``max``: a document scores as its best chunk, so a long document is judged by its best
    part. ``sum2`` / ``sum3``: the sum of its best two / three chunks. Ties keep the order in
    which documents first appeared.
    """
    per_doc: dict[str, list[float]] = {}
    for doc, score in scored:
        per_doc.setdefault(doc, []).append(score)
    top = {"max": 1, "sum2": 2, "sum3": 3}[pooling]
    totals = {d: sum(sorted(s, reverse=True)[:top]) for d, s in per_doc.items()}
    order = {d: i for i, d in enumerate(per_doc)}
    ranked = sorted(totals, key=lambda d: (-totals[d], order[d]))
    return ranked[:limit] if limit is not None else ranked


def rank_hits(hits: Sequence[Hit], *, pooling: Pooling = "max") -> list[str]:
    return rank_documents(((h.chunk.source, h.score) for h in hits), pooling=pooling)


def rrf_fuse(
    rankings: Sequence[Sequence[str]], *, k: float = 60.0, weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Reciprocal rank fusion exactly as Qdrant's ``Fusion.Rrf(k, weights)`` computes it:
    each list adds 1 / (rank / weight + k - 1), ranks from 1; unweighted, 1 / (rank + k - 1).
    """
    weights = weights or [1.0] * len(rankings)
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (rank / weight + k - 1.0)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def timing_summary(seconds: Sequence[float]) -> dict[str, float]:
    return {
        "queries": float(len(seconds)),
        "p50_ms": percentile(seconds, 50) * 1000,
        "p95_ms": percentile(seconds, 95) * 1000,
        "mean_ms": statistics.fmean(seconds) * 1000 if seconds else 0.0,
    }


# --- ingestion of a BEIR corpus -----------------------------------------------------------


@dataclass
class IngestTiming:
    documents: int = 0
    chunks: int = 0
    chunks_embedded: int = 0
    reused: bool = False
    chunk_seconds: float = 0.0
    embed_seconds: float = 0.0
    upsert_seconds: float = 0.0
    total_seconds: float = 0.0

    @property
    def chunks_per_second(self) -> float:
        return self.chunks_embedded / self.embed_seconds if self.embed_seconds else 0.0


def chunk_corpus(
    documents: Iterable[Document], chunker: Callable[[Document], list[Chunk]]
) -> list[Chunk]:
    return [c for d in documents for c in chunker(d)]


def ingest_corpus(
    store: VectorStore,
    embedder: Embedder,
    chunks: Sequence[Chunk],
    *,
    batch_chunks: int = 256,
    skip_ids: set[str] | None = None,
    timing: IngestTiming | None = None,
) -> IngestTiming:
    """Embed and upsert ``chunks`` in batches, leaving out those whose id is in ``skip_ids``
    (already stored: chunk ids are content-derived, so an interrupted ingest resumes)."""
    timing = timing or IngestTiming()
    todo = [c for c in chunks if c.id not in (skip_ids or set())]
    for start in range(0, len(todo), batch_chunks):
        batch = todo[start : start + batch_chunks]
        began = time.perf_counter()
        vectors = embedder.embed_documents([c.embedding_text for c in batch])
        embedded = time.perf_counter()
        store.upsert(batch, vectors)
        timing.embed_seconds += embedded - began
        timing.upsert_seconds += time.perf_counter() - embedded
        timing.chunks_embedded += len(batch)
        log.info(
            "ingested %d/%d chunks (%.1f chunks/s)",
            timing.chunks_embedded,
            len(todo),
            timing.chunks_per_second,
        )
    return timing


def prepare_collection(
    settings: Settings,
    embedder: Embedder,
    dataset: BeirDataset,
    *,
    collection: str,
    reuse: bool,
) -> tuple[VectorStore, IngestTiming]:
    """Open ``collection`` holding exactly the corpus's chunks.

    Without ``reuse`` the collection is dropped and built afresh (the ingestion is timed
    whole); with it, only chunks missing from the collection are embedded and chunks the
    corpus does not have are deleted, so a complete collection costs one id scan.
    """
    from rag.runtime import open_collection, state_path
    from rag.services import drop_collection, make_chunker

    if state_path(settings, collection).exists():
        # Evaluation drops and prunes its collection: never one that `rag ingest` filled.
        raise InvalidInputError(
            f"collection {collection!r} holds ingested documents; evaluate into another "
            "collection (--collection NAME)",
            field="collection",
        )
    started = time.perf_counter()
    if not reuse:
        with contextlib.suppress(CollectionNotFoundError):
            drop_collection(settings, collection)
    store = open_collection(settings, embedder, collection=collection, create=True)
    try:
        timing = IngestTiming(documents=len(dataset.corpus))
        chunker = make_chunker(settings, embedder)
        chunks = chunk_corpus(corpus_documents(dataset.corpus.values()), chunker.chunk)
        timing.chunks = len(chunks)
        timing.chunk_seconds = time.perf_counter() - started
        stored = store.point_ids() if reuse else set()
        extra = stored - {c.id for c in chunks}
        if extra:
            log.info("deleting %d chunks that are not in the corpus", len(extra))
            store.delete(sorted(extra))
        timing.reused = reuse and not extra and stored.issuperset(c.id for c in chunks)
        ingest_corpus(
            store,
            embedder,
            chunks,
            batch_chunks=settings.ingest_batch_chunks,
            skip_ids=stored,
            timing=timing,
        )
        store.build_index()  # as `rag ingest` does: query times are then the product's
        timing.total_seconds = time.perf_counter() - started
        log.info(
            "collection %r: %d documents, %d chunks (%d embedded) in %.1fs",
            collection,
            timing.documents,
            timing.chunks,
            timing.chunks_embedded,
            timing.total_seconds,
        )
        return store, timing
    except BaseException:
        store.close()
        raise


# --- single-vector search (dense-only, BM25-only) -----------------------------------------


def search_single(store: VectorStore, text: str, vector: Any, *, using: Mode, k: int) -> list[Hit]:
    """Query one vector of the collection, bypassing fusion (evaluation only).

    ``using`` is ``dense`` (``vector`` is the query embedding) or ``bm25`` (``vector`` is
    ignored). Hit scores are that vector's own scores (cosine, or BM25); ``similarity`` is
    the cosine for dense hits and 0 for BM25 hits.
    """
    from rag.store.base import DENSE, SPARSE, bm25_model, from_payload
    from rag.store.edge import EdgeVectorStore

    if using == "hybrid":
        raise ValueError("search_single queries one vector: 'dense' or 'bm25'")
    name = DENSE if using == "dense" else SPARSE
    query: Any = vector.tolist() if using == "dense" else bm25_model().embed_query(text)
    if using == "bm25" and not query.indices:
        return []  # only stopwords: BM25 has nothing to match
    if isinstance(store, EdgeVectorStore):
        import qdrant_edge as qe

        shard = store._shard  # evaluation may reach inside; the product goes through search()
        points: Sequence[Any] = shard.query(
            qe.QueryRequest(limit=k, query=qe.Query.Nearest(query, using=name), with_payload=True)
        )
    else:
        from qdrant_client import models

        from rag.store.server import QdrantServerStore

        if not isinstance(store, QdrantServerStore):
            raise TypeError(f"cannot run a single-vector search on {type(store).__name__}")
        if using == "bm25":
            query = models.SparseVector(indices=list(query.indices), values=list(query.values))
        points = store._client.query_points(
            store.collection, query=query, using=name, limit=k, with_payload=True
        ).points
    return [
        Hit(
            chunk=from_payload(p.id, p.payload or {}),
            score=float(p.score),
            similarity=float(p.score) if using == "dense" else 0.0,
        )
        for p in points
    ]


# --- retrieval evaluation -----------------------------------------------------------------


@dataclass
class ModeResult:
    mode: str
    metrics: dict[str, float]
    timing: dict[str, float]
    run: dict[str, list[str]] = field(default_factory=dict, repr=False)


@dataclass
class RetrievalReport:
    dataset: str
    split: str
    collection: str
    queries: int
    chunk_k: int
    pooling: str
    ingest: IngestTiming
    results: list[ModeResult]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "collection": self.collection,
            "queries": self.queries,
            "chunk_k": self.chunk_k,
            "pooling": self.pooling,
            "ingest": asdict(self.ingest) | {"chunks_per_second": self.ingest.chunks_per_second},
            "results": {r.mode: {"metrics": r.metrics, "timing": r.timing} for r in self.results},
        }

    def table(self) -> str:
        head = f"{'mode':<8} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'MRR@10':>7}"
        lines = [
            f"{self.dataset} ({self.split}, {self.queries} queries, collection "
            f"{self.collection!r}, {self.chunk_k} chunks per query, doc score = {self.pooling} "
            "over its chunks)",
            head + f" {'p50 ms':>8} {'p95 ms':>8}",
        ]
        for r in self.results:
            m, t = r.metrics, r.timing
            lines.append(
                f"{r.mode:<8} {m['ndcg@10']:>8.4f} {m['recall@10']:>7.4f} "
                f"{m['recall@100']:>7.4f} {m['mrr@10']:>7.4f} {t['p50_ms']:>8.1f} "
                f"{t['p95_ms']:>8.1f}"
            )
        i = self.ingest
        what = "reused" if i.reused else f"{i.chunks_embedded} chunks embedded"
        lines.append(
            f"ingest: {i.documents} documents, {i.chunks} chunks ({what}) in "
            f"{i.total_seconds:.1f}s (chunking {i.chunk_seconds:.1f}s, embedding "
            f"{i.embed_seconds:.1f}s = {i.chunks_per_second:.1f} chunks/s, upsert "
            f"{i.upsert_seconds:.1f}s)"
        )
        return "\n".join(lines)


def search_mode(
    store: VectorStore,
    embedder: Embedder,
    settings: Settings,
    text: str,
    *,
    mode: Mode,
    chunk_k: int,
    reranker: Reranker | None = None,
) -> list[Hit]:
    """The chunks one mode retrieves for ``text``: ``hybrid`` through HybridRetriever (the
    production path, at most 100 chunks), the others through ``search_single``."""
    if mode == "hybrid":
        from rag.retrieval import HybridRetriever

        retriever = HybridRetriever(embedder, store, settings, reranker)
        return retriever.search(text, k=min(chunk_k, MAX_RETRIEVER_K))
    vector = embedder.embed_query(text) if mode == "dense" else None
    return search_single(store, text, vector, using=mode, k=chunk_k)


def run_queries(
    store: VectorStore,
    embedder: Embedder,
    settings: Settings,
    queries: Mapping[str, str],
    *,
    mode: Mode,
    chunk_k: int = 200,
    pooling: Pooling = "max",
    reranker: Reranker | None = None,
) -> tuple[dict[str, list[str]], list[float]]:
    """Each query's document ranking (top 100) and the seconds each query took."""
    run: dict[str, list[str]] = {}
    seconds: list[float] = []
    for qid, text in queries.items():
        started = time.perf_counter()
        hits = search_mode(
            store, embedder, settings, text, mode=mode, chunk_k=chunk_k, reranker=reranker
        )
        seconds.append(time.perf_counter() - started)
        run[qid] = rank_hits(hits, pooling=pooling)[:100]
    return run, seconds


def evaluate_retrieval(
    settings: Settings,
    dataset_dir: Path,
    split: str = "test",
    *,
    collection: str | None = None,
    reuse: bool = False,
    modes: Sequence[Mode] = MODES,
    chunk_k: int = 200,
    pooling: Pooling = "max",
    embedder: Embedder | None = None,
) -> RetrievalReport:
    """Ingest a BEIR corpus into ``collection`` (default: the dataset folder's name) through
    the real pipeline, run the split's queries in each mode and score the document rankings."""
    from rag.config import validate_collection_name
    from rag.embedding import build_embedder
    from rag.runtime import build_reranker

    reranker = build_reranker(settings)
    dataset = load_beir(dataset_dir, split)
    name = validate_collection_name(collection or _collection_name(dataset_dir))
    embedder = embedder or build_embedder(settings, bulk=True)
    store, ingest = prepare_collection(settings, embedder, dataset, collection=name, reuse=reuse)
    try:
        wanted = dataset.evaluated_queries
        queries = {q: dataset.queries[q] for q in wanted}
        qrels = {q: dataset.qrels[q] for q in wanted}
        results = []
        for mode in modes:
            run, seconds = run_queries(
                store,
                embedder,
                settings,
                queries,
                mode=mode,
                chunk_k=chunk_k,
                pooling=pooling,
                reranker=reranker,
            )
            metrics = retrieval_metrics(run, qrels)
            log.info("%s: %s", mode, metrics)
            results.append(ModeResult(mode, metrics, timing_summary(seconds), run))
    finally:
        store.close()
    return RetrievalReport(
        dataset=dataset_dir.name,
        split=split,
        collection=name,
        queries=len(wanted),
        chunk_k=chunk_k,
        pooling=pooling,
        ingest=ingest,
        results=results,
    )


def _collection_name(dataset_dir: Path) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_-" else "-" for c in dataset_dir.resolve().name)
    return f"eval-{cleaned}".strip("-")[:64] or "eval"


# --- QA evaluation ------------------------------------------------------------------------


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
    for number, row in enumerate(_read_jsonl(path), 1):
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
    """Ask every question through ``Answerer.ask``; hit@5 from a separate top-5 search."""
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
    """Answer every question of ``questions_path`` from ``collection`` and score the answers."""
    items = load_qa(questions_path)
    if answerer is not None:
        return run_qa(answerer, items)
    from rag.config import validate_collection_name
    from rag.services import open_answerer

    if collection is not None:
        settings = settings.model_copy(update={"collection": validate_collection_name(collection)})
    with open_answerer(settings) as opened:
        return run_qa(opened, items)
