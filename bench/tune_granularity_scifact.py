"""Coarser BM25 and finer dense evidence on SciFact, fused with the product's chunk evidence.

The product embeds and indexes chunks (200 tokens); a document scores as its best chunk. Two
other granularities, measured here against a client-side copy of the product's fusion (DBSF:
each list's scores normalized by mean +- 3 sd over its 100 candidates, summed per document):

- ``doc bm25``: BM25 over whole documents (title + abstract) instead of chunks, so a claim's
  words count together wherever in the abstract they are. Qdrant's own BM25 weights
  (``bm25_model().embed_document``) and IDF formula, computed here over the documents.
- ``sentence dense``: all-MiniLM-L6-v2 over single sentences, a document scoring as its best
  sentence (a claim usually restates one sentence). Fused as a third list with weight ``w``.
  SciFact joins its sentences without a space ("disabilities.A line scan"), so they are split
  here on a period followed by a capital.

    RAG_DATA_DIR=/tmp/scifact-data RAG_MODEL_CACHE_DIR=data/models \\
        python bench/tune_granularity_scifact.py --split train [--collection eval-scifact]

The collection must hold the corpus (``rag eval retrieval DATASET`` builds it). The sentence
vectors (about 43,000; 2-3 min on 2 cores) are cached in ``--cache``. ``dNDCG``/``se``: mean
paired nDCG@10 difference from ``chunk bm25 + dense`` and its standard error. Prints numbers.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.evaluation import (
    BeirDataset,
    chunk_corpus,
    corpus_documents,
    load_beir,
    ndcg_at_k,
    retrieval_metrics,
    search_single,
)
from rag.runtime import build_embedder, open_collection
from rag.services import make_chunker
from rag.store.base import bm25_model

DEFAULT_DATASET = Path("/work/shared/data/scifact")
CANDIDATES = 100  # per list, as the product's prefetch
_GLUED_SENTENCE = re.compile(r"(?<=[a-z0-9)\]%][.!?])\s*(?=[A-Z])")

Scores = dict[str, float]  # doc id -> score


class Bm25Index:
    """Qdrant's BM25 (its tokenizer and tf weights, IDF with its formula) over ``texts``."""

    def __init__(self, texts: Sequence[str], owners: Sequence[str]) -> None:
        model = bm25_model()
        self._owners = owners
        self._postings: dict[int, list[tuple[int, float]]] = {}
        for row, text in enumerate(texts):
            vector = model.embed_document(text)
            for term, weight in zip(vector.indices, vector.values, strict=True):
                self._postings.setdefault(term, []).append((row, weight))
        self._n = len(texts)

    def search(self, query: str) -> Scores:
        totals: dict[int, float] = {}
        for term in bm25_model().embed_query(query).indices:
            posting = self._postings.get(term, [])
            idf = math.log((self._n - len(posting) + 0.5) / (len(posting) + 0.5) + 1.0)
            for row, weight in posting:
                totals[row] = totals.get(row, 0.0) + idf * weight
        best = sorted(totals, key=lambda r: -totals[r])[:CANDIDATES]
        return dbsf_by_doc([(self._owners[r], totals[r]) for r in best])


def dbsf_by_doc(scored: Sequence[tuple[str, float]]) -> Scores:
    """Qdrant's distribution-based score normalization over one list, then each document's
    best."""
    if not scored:
        return {}
    values = np.array([s for _, s in scored])
    low, high = values.mean() - 3 * values.std(), values.mean() + 3 * values.std()
    out: Scores = {}
    for doc, score in scored:
        normal = (score - low) / (high - low) if high > low else 0.5
        out[doc] = max(out.get(doc, float("-inf")), normal)
    return out


def fuse(lists: Sequence[tuple[float, Scores]]) -> list[str]:
    totals: Scores = {}
    for weight, scores in lists:
        for doc, score in scores.items():
            totals[doc] = totals.get(doc, 0.0) + weight * score
    return sorted(totals, key=lambda d: -totals[d])[:100]


def sentences(dataset: BeirDataset) -> tuple[list[str], list[str]]:
    texts, owners = [], []
    for doc in dataset.corpus.values():
        parts = [p.strip() for p in _GLUED_SENTENCE.split(doc.text)]
        for part in [p for p in parts if len(p) >= 20] or [doc.text]:
            texts.append(part)
            owners.append(doc.id)
    return texts, owners


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--split", default="train")
    parser.add_argument("--collection", default="eval-scifact")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/scifact-sentences.npy"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = Settings()
    dataset = load_beir(args.dataset, args.split)
    embedder = build_embedder(settings)
    chunks = chunk_corpus(
        corpus_documents(dataset.corpus.values()), make_chunker(settings, embedder).chunk
    )
    chunk_bm25 = Bm25Index([c.embedding_text for c in chunks], [c.source for c in chunks])
    docs = list(dataset.corpus.values())
    doc_bm25 = Bm25Index([f"{d.title}\n{d.text}" for d in docs], [d.id for d in docs])
    texts, owners = sentences(dataset)
    if args.cache.exists():
        sentence_vectors = np.load(args.cache)
    else:
        sentence_vectors = build_embedder(settings, bulk=True).embed_documents(texts)
        np.save(args.cache, sentence_vectors)
    queries = dataset.evaluated_queries
    store = open_collection(settings, embedder, collection=args.collection)
    runs: dict[str, dict[str, list[str]]] = {}
    try:
        for q in queries:
            text = dataset.queries[q]
            vector = embedder.embed_query(text)
            hits = search_single(store, text, vector, using="dense", k=CANDIDATES)
            dense = dbsf_by_doc([(h.chunk.source, h.score) for h in hits])
            similarity = sentence_vectors @ vector
            top = np.argsort(-similarity)[: 4 * CANDIDATES]
            sentence = dbsf_by_doc([(owners[i], float(similarity[i])) for i in top])
            by_chunk, by_doc = chunk_bm25.search(text), doc_bm25.search(text)
            variants: Mapping[str, Sequence[tuple[float, Scores]]] = {
                "dense (chunks)": [(1, dense)],
                "sentence dense": [(1, sentence)],
                "chunk bm25": [(1, by_chunk)],
                "doc bm25": [(1, by_doc)],
                "chunk bm25 + dense": [(1, by_chunk), (1, dense)],
                "doc bm25 + dense": [(1, by_doc), (1, dense)],
                "chunk bm25 + doc bm25 + dense": [(1, by_chunk), (1, by_doc), (1, dense)],
                **{
                    f"{bm25} + dense + sentence w={w:g}": [(1, lists), (1, dense), (w, sentence)]
                    for bm25, lists in (("chunk bm25", by_chunk), ("doc bm25", by_doc))
                    for w in (0.25, 0.5, 0.75, 1.0)
                },
            }
            for name, lists in variants.items():
                runs.setdefault(name, {})[q] = fuse(lists)
    finally:
        store.close()
    qrels = {q: dataset.qrels[q] for q in queries}
    base = [ndcg_at_k(runs["chunk bm25 + dense"][q], qrels[q]) for q in queries]
    print(f"{args.split}: {len(queries)} queries, {len(chunks)} chunks, {len(texts)} sentences")
    print(f"{'variant':<42} {'nDCG@10':>8} {'R@100':>7} {'dNDCG':>7} {'se':>6}")
    for name, run in runs.items():
        metrics = retrieval_metrics(run, qrels)
        diffs = [ndcg_at_k(run[q], qrels[q]) - b for q, b in zip(queries, base, strict=True)]
        se = statistics.stdev(diffs) / math.sqrt(len(diffs))
        print(
            f"{name:<42} {metrics['ndcg@10']:>8.4f} {metrics['recall@100']:>7.4f} "
            f"{statistics.mean(diffs):>+7.4f} {se:>6.4f}"
        )


if __name__ == "__main__":
    main()
