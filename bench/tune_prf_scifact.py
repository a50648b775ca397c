"""Pseudo-relevance feedback (PRF) and MMR on SciFact, on top of the production hybrid search
(Qdrant Edge: dense + BM25 prefetches of 100 chunks fused by DBSF; a document scores as its
best chunk).

Every query runs the first hybrid search (100 chunks, with their dense and BM25 vectors);
each PRF variant then builds a new query from its top results and runs a second hybrid
search in Qdrant with the same fusion:

- ``rocchio(m,b)``: dense Rocchio, q' = normalize(q + b * mean of the dense vectors of the
  top m chunks); the BM25 query is unchanged.
- ``rm3(m,n,a)``: BM25 expansion (RM3-like), the best chunks of the top m documents give
  term weights tf = mean stored BM25 weight (saturated, length-normalized tf); the n terms
  with the highest tf * idf (df >= 2, not in the query) join the query with weight
  a * tf / max tf (query terms keep 1; Qdrant applies idf itself).
- ``rocchio(..)+rm3(..)``: both at once.
- ``+fuse(rrf)`` / ``+fuse(mix)``: the first and the PRF document rankings fused by RRF
  (k=60) or by the mean of their document scores (missing = 0).
- ``+mmr(l)``: MMR over the top 20 documents (relevance = min-max fused score, redundancy =
  cosine of the documents' best chunks), the rest unchanged.

    RAG_MODEL_CACHE_DIR=data/models python bench/tune_prf_scifact.py --split train \\
        --data-dir /tmp/scifact-int8 [--collection scifact]
    python bench/tune_prf_scifact.py --split test --data-dir /tmp/scifact-int8 \\
        --only "baseline" "rocchio(m=3,b=0.5)"

On train the grid runs in stages: Rocchio and RM3 grids, then combinations of the three best
of each, then fusion and MMR on the best ones. Evaluate only the chosen variants on test
(``--only``). The collection must already hold the corpus (bench/bench_scifact.py builds it)
in an Edge store (``RAG_STORE=edge``). ``+ms`` is the median extra time per query of the
PRF step (building the new query and the second search; nothing is embedded again);
``dNDCG`` / ``se``: mean paired nDCG@10 difference from ``baseline`` and its standard error.
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import re
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from rag.config import Settings
from rag.evaluation import (
    BeirDataset,
    load_beir,
    ndcg_at_k,
    rank_hits,
    retrieval_metrics,
    rrf_fuse,
)
from rag.retrieval import HybridRetriever
from rag.runtime import build_embedder, open_collection
from rag.store.base import DENSE, SPARSE, bm25_model
from rag.store.edge import EdgeVectorStore

DEFAULT_DATASET = Path("/work/shared/data/scifact")
CHUNKS = 100  # chunks of each hybrid search, as the evaluation's hybrid mode
PREFETCH = 100
MMR_DEPTH = 20


@dataclass
class Cand:
    """A chunk of a hybrid search: id, document, fused score, dense and BM25 vectors."""

    chunk: str
    doc: str
    score: float
    dense: np.ndarray
    sparse: Any = None


Row = tuple[dict[str, float], float, list[float] | None]  # metrics, extra ms, nDCG per query
DocRanking = list[tuple[str, float, Any]]  # (doc id, score, best chunk's dense vector)


@dataclass
class First:
    vector: np.ndarray
    sparse: Any
    cands: list[Cand]
    docs: DocRanking
    seconds: float


@dataclass
class Spec:
    rocchio: tuple[int, float] | None = None  # (m chunks, beta)
    rm3: tuple[int, int, float] | None = None  # (m documents, n terms, alpha)
    fuse: str | None = None  # rrf | mix
    mmr: float | None = None  # lambda

    @property
    def name(self) -> str:
        parts = []
        if self.rocchio:
            parts.append(f"rocchio(m={self.rocchio[0]},b={self.rocchio[1]:g})")
        if self.rm3:
            parts.append(f"rm3(m={self.rm3[0]},n={self.rm3[1]},a={self.rm3[2]:g})")
        if not parts:
            parts.append("baseline")
        if self.fuse:
            parts.append(f"fuse({self.fuse})")
        if self.mmr is not None:
            parts.append(f"mmr(l={self.mmr:g})")
        return "+".join(parts)

    @property
    def prf(self) -> bool:
        return bool(self.rocchio or self.rm3)


def parse_spec(name: str) -> Spec:
    spec = Spec()
    for part in name.split("+"):
        match = re.fullmatch(r"(\w+)(?:\((.*)\))?", part.strip())
        if not match:
            raise ValueError(f"cannot read variant {name!r}")
        kind, raw = match.group(1), match.group(2) or ""
        args = dict(kv.split("=") for kv in raw.split(",") if "=" in kv)
        if kind == "rocchio":
            spec.rocchio = (int(args["m"]), float(args["b"]))
        elif kind == "rm3":
            spec.rm3 = (int(args["m"]), int(args["n"]), float(args["a"]))
        elif kind == "fuse":
            spec.fuse = raw
        elif kind == "mmr":
            spec.mmr = float(args["l"])
        elif kind != "baseline":
            raise ValueError(f"unknown part {part!r} in {name!r}")
    return spec


# --- searching ------------------------------------------------------------------------


def hybrid(shard: qe.EdgeShard, vector: np.ndarray, sparse: Any, *, sparse_vectors: bool):
    """The production hybrid search (rag/store/edge.py) with a given dense and BM25 query."""
    prefetches = [qe.Prefetch(limit=PREFETCH, query=qe.Query.Nearest(vector.tolist(), using=DENSE))]
    if sparse.indices:
        prefetches.append(qe.Prefetch(limit=PREFETCH, query=qe.Query.Nearest(sparse, using=SPARSE)))
    points = shard.query(
        qe.QueryRequest(
            limit=CHUNKS,
            prefetches=prefetches,
            query=qe.Fusion.Dbsf(),
            with_payload=["source"],
            with_vector=[DENSE, SPARSE] if sparse_vectors else [DENSE],
        )
    )
    return [
        Cand(
            str(p.id),
            p.payload["source"],
            float(p.score),
            np.asarray(p.vector[DENSE], dtype=np.float32),
            p.vector.get(SPARSE) if sparse_vectors else None,
        )
        for p in points
    ]


def doc_ranking(cands: Sequence[Cand]) -> DocRanking:
    """Documents by their best chunk (the candidates come best first)."""
    seen: dict[str, tuple[str, float, Any]] = {}
    for c in cands:
        if c.doc not in seen:
            seen[c.doc] = (c.doc, c.score, c.dense if len(seen) < MMR_DEPTH else None)
    return list(seen.values())


def idf_table(shard: qe.EdgeShard) -> tuple[dict[int, float], dict[int, int]]:
    """Qdrant's BM25 idf, ln(1 + (N - df + 0.5) / (df + 0.5)), from every stored BM25 vector."""
    df: dict[int, int] = {}
    total, offset = 0, None
    while True:
        records, offset = shard.scroll(
            qe.ScrollRequest(offset=offset, limit=1000, with_payload=False, with_vector=[SPARSE])
        )
        for r in records:
            total += 1
            for i in r.vector[SPARSE].indices:
                df[i] = df.get(i, 0) + 1
        if offset is None:
            break
    idf = {i: math.log(1 + (total - n + 0.5) / (n + 0.5)) for i, n in df.items()}
    return idf, df


# --- PRF query builders -----------------------------------------------------------------


def rocchio_vector(first: First, m: int, beta: float) -> np.ndarray:
    feedback = np.mean([c.dense for c in first.cands[:m]], axis=0)
    vector = first.vector + beta * feedback
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def rm3_sparse(
    first: First, m: int, n: int, alpha: float, idf: dict[int, float], df: dict[int, int]
) -> Any:
    query = dict(zip(first.sparse.indices, first.sparse.values, strict=True))
    tf: dict[int, float] = {}
    best = {}
    for c in first.cands:
        best.setdefault(c.doc, c)
    for c in list(best.values())[:m]:
        vec = c.sparse
        for t, w in zip(vec.indices, vec.values, strict=True):
            tf[t] = tf.get(t, 0.0) + w / m
    terms = [t for t in tf if t not in query and df.get(t, 0) >= 2]
    terms.sort(key=lambda t: -tf[t] * idf[t])
    chosen = terms[:n]
    if not chosen:
        return first.sparse
    top = max(tf[t] for t in chosen)
    weights = query | {t: alpha * tf[t] / top for t in chosen}
    return qe.SparseVector(indices=list(weights), values=list(weights.values()))


def fuse(a: DocRanking, b: DocRanking, how: str) -> list[str]:
    if how == "rrf":
        return [d for d, _ in rrf_fuse([[d for d, _, _ in a], [d for d, _, _ in b]], k=60)]
    sa, sb = {d: s for d, s, _ in a}, {d: s for d, s, _ in b}
    total = {d: (sa.get(d, 0.0) + sb.get(d, 0.0)) / 2 for d in sa.keys() | sb.keys()}
    return sorted(total, key=lambda d: -total[d])


def mmr(docs: DocRanking, lam: float) -> list[str]:
    head, tail = docs[:MMR_DEPTH], docs[MMR_DEPTH:]
    scores = np.array([s for _, s, _ in head])
    span = (scores.max() - scores.min()) or 1.0
    rel = (scores - scores.min()) / span
    vecs = np.stack([v for _, _, v in head])
    sims = vecs @ vecs.T
    chosen: list[int] = []
    left = list(range(len(head)))
    while left:
        redundancy = [max((sims[j, c] for c in chosen), default=0.0) for j in left]
        best = max(range(len(left)), key=lambda x: lam * rel[left[x]] - (1 - lam) * redundancy[x])
        chosen.append(left.pop(best))
    return [head[j][0] for j in chosen] + [d for d, _, _ in tail]


# --- running --------------------------------------------------------------------------


@dataclass
class Bench:
    shard: qe.EdgeShard
    firsts: dict[str, First]
    idf: dict[int, float]
    df: dict[int, int]
    qrels: dict[str, dict[str, int]]
    cache: dict[tuple[Any, Any], tuple[dict[str, DocRanking], float]] = field(default_factory=dict)

    def second(self, spec: Spec):
        """Per query, the PRF search's document ranking; the median extra ms per query."""
        key = (spec.rocchio, spec.rm3)
        if key not in self.cache:
            docs, extra = {}, []
            for q, first in self.firsts.items():
                started = time.perf_counter()
                vector = rocchio_vector(first, *spec.rocchio) if spec.rocchio else first.vector
                sparse = (
                    rm3_sparse(first, *spec.rm3, self.idf, self.df) if spec.rm3 else first.sparse
                )
                found = hybrid(self.shard, vector, sparse, sparse_vectors=False)
                extra.append(time.perf_counter() - started)
                docs[q] = doc_ranking(found)
            self.cache[key] = (docs, statistics.median(extra) * 1000)
        return self.cache[key]

    def evaluate(self, spec: Spec) -> Row:
        extra = 0.0
        if spec.prf:
            docs, extra = self.second(spec)
        else:
            docs = {q: f.docs for q, f in self.firsts.items()}
        run: dict[str, list[str]] = {}
        for q, first in self.firsts.items():
            if spec.fuse:
                ranking = fuse(first.docs, docs[q], spec.fuse)
            elif spec.mmr is not None:
                ranking = mmr(docs[q], spec.mmr)
            else:
                ranking = [d for d, _, _ in docs[q]]
            run[q] = ranking[:100]
        per_query = [ndcg_at_k(run[q], self.qrels[q], 10) for q in self.firsts]
        return retrieval_metrics(run, self.qrels), extra, per_query


def first_searches(store: EdgeVectorStore, embedder: Any, dataset: BeirDataset) -> dict[str, First]:
    shard = store._shard  # a benchmark may reach inside; the product goes through search()
    bm25 = bm25_model()
    firsts = {}
    for q in dataset.evaluated_queries:
        text = dataset.queries[q]
        vector = np.asarray(embedder.embed_query(text), dtype=np.float32)
        started = time.perf_counter()
        sparse = bm25.embed_query(text)
        cands = hybrid(shard, vector, sparse, sparse_vectors=True)
        seconds = time.perf_counter() - started
        firsts[q] = First(vector, sparse, cands, doc_ranking(cands), seconds)
    return firsts


def production_baseline(
    store: EdgeVectorStore, embedder: Any, settings: Settings, dataset: BeirDataset
) -> dict[str, float]:
    """The evaluation's hybrid mode (HybridRetriever, 100 chunks), to check ``baseline``."""
    retriever = HybridRetriever(embedder, store, settings)
    run = {
        q: rank_hits(retriever.search(dataset.queries[q], k=CHUNKS))[:100]
        for q in dataset.evaluated_queries
    }
    return retrieval_metrics(run, {q: dataset.qrels[q] for q in run})


def train_grid(bench: Bench, table: dict[str, Row]) -> None:
    def run(spec: Spec) -> float:
        if spec.name not in table:
            table[spec.name] = bench.evaluate(spec)
            log.info("%-50s %.4f", spec.name, table[spec.name][0]["ndcg@10"])
        return table[spec.name][0]["ndcg@10"]

    run(Spec())
    rocchio = [
        Spec(rocchio=(m, b))
        for m, b in itertools.product((1, 2, 3, 5, 10), (0.1, 0.2, 0.3, 0.5, 1.0))
    ]
    rm3 = [
        Spec(rm3=(m, n, a))
        for m, n, a in itertools.product((1, 2, 3, 5, 10), (5, 10, 20), (0.1, 0.25, 0.5))
    ]
    for spec in rocchio + rm3:
        run(spec)
    best_r = sorted(rocchio, key=lambda s: -run(s))[:3]
    best_b = sorted(rm3, key=lambda s: -run(s))[:3]
    both = [Spec(rocchio=r.rocchio, rm3=b.rm3) for r, b in itertools.product(best_r, best_b)]
    for spec in both:
        run(spec)
    best = sorted(best_r[:2] + best_b[:2] + both, key=lambda s: -run(s))[:3]
    for spec in [Spec(), *best]:
        for how in ("rrf", "mix"):
            if spec.prf:
                run(Spec(spec.rocchio, spec.rm3, fuse=how))
        for lam in (0.7, 0.8, 0.9):
            run(Spec(spec.rocchio, spec.rm3, mmr=lam))


log = logging.getLogger("tune_prf")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--split", default="train")
    parser.add_argument("--data-dir", type=Path, help="RAG_DATA_DIR of the collection.")
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--only", nargs="*", help="Evaluate only these variants.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    logging.getLogger("rag").setLevel(logging.WARNING)
    settings = Settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    dataset = load_beir(args.dataset, args.split)
    embedder = build_embedder(settings)
    store = open_collection(settings, embedder, collection=args.collection)
    if not isinstance(store, EdgeVectorStore):
        sys.exit("this benchmark reads an Edge collection (RAG_STORE=edge)")
    table: dict[str, Row] = {}
    try:
        check = production_baseline(store, embedder, settings, dataset)
        firsts = first_searches(store, embedder, dataset)
        idf, df = idf_table(store._shard)
        qrels = {q: dataset.qrels[q] for q in firsts}
        bench = Bench(store._shard, firsts, idf, df, qrels)
        if args.only:
            for name in ["baseline", *args.only]:
                spec = parse_spec(name)
                table.setdefault(spec.name, bench.evaluate(spec))
        else:
            train_grid(bench, table)
    finally:
        store.close()
    first_ms = statistics.median(f.seconds for f in firsts.values()) * 1000
    print(
        f"{args.split}: {len(firsts)} queries; hybrid = dense + BM25, {PREFETCH} each, DBSF, "
        f"{CHUNKS} chunks, doc = best chunk; first search p50 {first_ms:.1f} ms"
    )
    print(
        f"{'variant':<52} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'MRR@10':>7} {'+ms':>5} "
        f"{'dNDCG':>7} {'se':>6}"
    )
    base = table["baseline"][2] or []
    rows = [("HybridRetriever (production path)", (check, 0.0, None)), *table.items()]
    rows.sort(key=lambda row: -row[1][0]["ndcg@10"])
    for name, (m, extra, per_query) in rows:
        line = (
            f"{name:<52} {m['ndcg@10']:>8.4f} {m['recall@10']:>7.4f} "
            f"{m['recall@100']:>7.4f} {m['mrr@10']:>7.4f} {extra:>5.1f}"
        )
        if per_query is not None:  # paired difference from the baseline, with its std error
            diff = [a - b for a, b in zip(per_query, base, strict=True)]
            se = statistics.stdev(diff) / math.sqrt(len(diff))
            line += f" {statistics.fmean(diff):>+7.4f} {se:>6.4f}"
        print(line)


if __name__ == "__main__":
    main()
