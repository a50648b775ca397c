"""Retrieval quality on a BEIR dataset, per retrieval mode, with query and ingestion timings.

The corpus is chunked, embedded and upserted into its own collection through ingestion's
chunker and its one embed -> upsert step (``ingest.pipeline.write_chunks``), each corpus row
becoming a ``Document`` whose source is the doc id. Every query retrieves chunks; a document
scores as its best chunk (max pooling by default), and the document ranking is scored with
nDCG@10, Recall@10, Recall@100 and MRR@10 (``rag.evaluation.metrics``).

Modes: ``hybrid`` is the production path (``HybridRetriever``: dense and BM25 candidates
fused inside Qdrant as the ``fusion`` setting says); ``dense`` and ``bm25`` query one named
vector of the collection, without fusion (``VectorStore.search_one``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rag.errors import CollectionNotFoundError, InvalidInputError
from rag.evaluation.beir import BeirDataset, corpus_documents, load_beir
from rag.evaluation.metrics import Pooling, rank_hits, retrieval_metrics, timing_summary

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.embedding import Embedder
    from rag.rerank import Reranker
    from rag.store.base import VectorStore
    from rag.types import Hit

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "bm25")

# HybridRetriever refuses k > 100; the single-vector modes may ask for more.
MAX_RETRIEVER_K = 100


@dataclass
class IngestTiming:
    """How the evaluation collection was filled. ``chunk_seconds`` runs from the start of
    ``prepare_collection`` (opening or dropping the collection included) to the last chunk."""

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
    corpus does not have are deleted, so a complete collection costs one id scan (chunk ids
    are content-derived, so an interrupted build resumes). A collection that ``rag ingest``
    filled is refused: evaluation drops and prunes its collection.
    """
    from ingest.pipeline import write_chunks
    from rag.catalog import drop_collection, open_collection, state_path
    from rag.chunking import make_chunker

    if state_path(settings, collection).exists():
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
        documents = corpus_documents(dataset.corpus.values())
        chunks = [c for document in documents for c in chunker.chunk(document)]
        timing.chunks = len(chunks)
        timing.chunk_seconds = time.perf_counter() - started
        stored = store.point_ids() if reuse else set()
        extra = stored - {c.id for c in chunks}
        if extra:
            log.info("deleting %d chunks that are not in the corpus", len(extra))
            store.delete(sorted(extra))
        timing.reused = reuse and not extra and stored.issuperset(c.id for c in chunks)
        todo = [c for c in chunks if c.id not in stored]
        written = write_chunks(
            store,
            embedder,
            todo,
            batch_chunks=settings.ingest_batch_chunks,
            on_batch=lambda done: log.info(
                "ingested %d/%d chunks (%.1f chunks/s)",
                done.embedded,
                len(todo),
                done.embedded / done.embed_seconds if done.embed_seconds else 0.0,
            ),
        )
        timing.chunks_embedded = written.embedded
        timing.embed_seconds = written.embed_seconds
        timing.upsert_seconds = written.upsert_seconds
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
    production path, at most ``MAX_RETRIEVER_K`` chunks), the others through
    ``VectorStore.search_one``."""
    if mode == "hybrid":
        from rag.retrieval import HybridRetriever

        retriever = HybridRetriever(embedder, store, settings, reranker)
        return retriever.search(text, k=min(chunk_k, MAX_RETRIEVER_K))
    vector = embedder.embed_query(text) if mode == "dense" else None
    return store.search_one(mode, text=text, vector=vector, k=chunk_k)


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
    """Each query's document ranking (top 100) and the seconds each query took, the models
    loaded beforehand (a collection reused has not loaded the embedder to ingest)."""
    embedder.warm_up()
    if reranker is not None:
        reranker.warm_up()
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
    """Ingest a BEIR corpus into ``collection`` (default: ``eval-`` and the dataset folder's
    name), run the split's queries in each mode and score the document rankings."""
    from rag.config import validate_collection_name
    from rag.embedding import build_embedder
    from rag.query import build_reranker

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
