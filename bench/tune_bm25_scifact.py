"""BM25 variants on SciFact without re-embedding: each builds a sparse-only Qdrant Edge shard
in a temporary folder from the same chunks, with another BM25 configuration (k1, b, avg_len)
or another indexed text (title + text, as the product indexes, or the text alone).

    RAG_MODEL_CACHE_DIR=data/models python bench/tune_bm25_scifact.py --split train

Tune on train; check the chosen variant on test. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import qdrant_edge as qe

from rag.config import Settings
from rag.evaluation import (
    BeirDataset,
    chunk_corpus,
    corpus_documents,
    load_beir,
    rank_documents,
    retrieval_metrics,
)
from rag.runtime import build_embedder
from rag.services import make_chunker
from rag.types import Chunk

DEFAULT_DATASET = Path("/work/shared/data/scifact")
DEPTH = 200


def token_lengths(texts: Sequence[str]) -> list[float]:
    """Tokens BM25 counts (after stopwords), recovered from b=0 weights: w = tf(k+1)/(tf+k)."""
    model = qe.Bm25(qe.Bm25Config(language="english", b=0.0, k=1.2))
    lengths = []
    for text in texts:
        vector = model.embed_document(text)
        lengths.append(sum(w * 1.2 / (2.2 - w) for w in vector.values))
    return lengths


def evaluate(
    chunks: Sequence[Chunk],
    dataset: BeirDataset,
    config: qe.Bm25Config,
    *,
    with_title: bool,
) -> dict[str, float]:
    model = qe.Bm25(config)
    with tempfile.TemporaryDirectory() as folder:
        shard = qe.EdgeShard.create(
            folder,
            qe.EdgeConfig(
                sparse_vectors={"bm25": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)}
            ),
        )
        try:
            for start in range(0, len(chunks), 1000):
                points = [
                    qe.Point(
                        c.id,
                        {"bm25": model.embed_document(c.embedding_text if with_title else c.text)},
                        {"source": c.source},
                    )
                    for c in chunks[start : start + 1000]
                ]
                shard.update(qe.UpdateOperation.upsert_points(points))
            run = {}
            for q in dataset.evaluated_queries:
                sparse = model.embed_query(dataset.queries[q])
                found = shard.query(
                    qe.QueryRequest(
                        limit=DEPTH, query=qe.Query.Nearest(sparse, using="bm25"), with_payload=True
                    )
                )
                scored = ((str((p.payload or {})["source"]), float(p.score)) for p in found)
                run[q] = rank_documents(scored)[:100]
        finally:
            shard.close()
    return retrieval_metrics(run, {q: dataset.qrels[q] for q in dataset.evaluated_queries})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--split", default="train")
    parser.add_argument(
        "--only", nargs="*", help="Variants as WITH_TITLE:K:B:AVG_LEN, e.g. 1:1.2:0.75:256."
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = Settings()
    embedder = build_embedder(settings)
    dataset = load_beir(args.dataset, args.split)
    chunks = chunk_corpus(
        corpus_documents(dataset.corpus.values()), make_chunker(settings, embedder).chunk
    )
    lengths = token_lengths([c.embedding_text for c in chunks])
    mean = statistics.fmean(lengths)
    print(f"{len(chunks)} chunks; BM25 tokens per chunk (title + text): mean {mean:.0f}")
    grid: list[tuple[bool, float, float, float]] = []
    if args.only:
        for spec in args.only:
            t, k, b, avg = spec.split(":")
            grid.append((t == "1", float(k), float(b), float(avg)))
    else:
        grid = [(True, 1.2, 0.75, 256.0), (False, 1.2, 0.75, 256.0)]
        grid += [(True, 1.2, 0.75, round(mean))]
        grid += [(True, k, b, round(mean)) for k in (0.9, 1.5) for b in (0.5, 0.75, 0.9)]
        grid += [(True, 1.2, b, round(mean)) for b in (0.5, 0.9)]
    print(f"{args.split}: {len(dataset.evaluated_queries)} queries")
    print(f"{'title k1 b avg_len':<24} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'MRR@10':>7}")
    for with_title, k, b, avg in grid:
        config = qe.Bm25Config(language="english", k=k, b=b, avg_len=avg)
        m = evaluate(chunks, dataset, config, with_title=with_title)
        name = f"{'title' if with_title else 'text'} {k:g} {b:g} {avg:g}"
        print(
            f"{name:<24} {m['ndcg@10']:>8.4f} {m['recall@10']:>7.4f} "
            f"{m['recall@100']:>7.4f} {m['mrr@10']:>7.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
