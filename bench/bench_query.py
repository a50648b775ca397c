"""Query latency at 100,000 chunks (query embedding + hybrid search) and /v1/search throughput.

    python bench/bench_query.py --data-dir DIR [--source DATA_DIR ...]
                                [--fallback-corpus corpus.jsonl] [--questions FILE.jsonl ...]
                                [--size 100000] [--scaling 10000] [--threads 1,2]
                                [--profile 200] [--compare-optimized] [--clients 1,16]
                                [--seconds 30] [--serve-threads 0,1] [--json]

1. Builds once, cached under ``--data-dir``, a collection of ``--size`` chunks through the
   product's store API (see bench/query_corpus.py: real chunks and vectors from the product
   collections under each ``--source`` data dir, topped up with labelled synthetic ones; with
   no such collection, documents of ``--fallback-corpus`` are embedded instead).
2. Times retrieval through the product's HybridRetriever with the default Settings (fusion,
   prefetch, top_k) for real questions (each ``--questions`` file: JSONL with a ``question``
   or, as BEIR's queries.jsonl, a ``text`` field; default: the Python 3.11 dev set) after a
   warm-up: the query embedding, the store search, and the whole call. ``--scaling`` repeats
   it on smaller collections; ``--threads`` sets torch's intra-op threads for the embedder;
   ``--compare-optimized`` adds a copy of the collection after the store's ``build_index()``
   built its HNSW index, as ``rag ingest`` does (the collection built here by upserts alone
   has none), with the share of top-k ids both return.
3. Starts the real server (``rag serve``) on loopback over the same collection and drives
   POST /v1/search with concurrent clients for ``--seconds`` per client count
   (``--serve-threads``: OMP_NUM_THREADS values for the server, one server each).

Prints numbers; asserts nothing. The load average before and after each phase is printed: on
a shared machine the numbers move with what else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import io
import json
import os
import pstats
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil  # type: ignore[import-untyped]  # no stubs installed
from query_corpus import (
    Manifest,
    build_collection,
    model_cache,
    optimized_copy,
    settings_for,
)

from rag.catalog import open_collection
from rag.config import Settings
from rag.embedding import Embedder, build_embedder
from rag.retrieval import HybridRetriever
from rag.store.base import CollectionInfo, SearchQuery, SingleVector, VectorStore
from rag.types import Chunk, Hit

DEV_SET = Path(__file__).resolve().parent / "qa" / "python311_dev.jsonl"


# --- statistics ------------------------------------------------------------------------------


def summary(samples: Sequence[float]) -> dict[str, float]:
    """Milliseconds: p50, p95, p99, mean, max and the number of samples."""
    if not samples:
        return {"n": 0}
    a = np.asarray(samples, dtype=np.float64)
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {
        "n": len(a),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "mean": float(a.mean()),
        "max": float(a.max()),
    }


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# --- questions -------------------------------------------------------------------------------


def load_questions(paths: Sequence[Path], seed: int) -> list[str]:
    """The questions of every file (``question`` field, or BEIR's ``text``), shuffled together
    so every kind spreads over the warm-up and the measured run."""
    questions: list[str] = []
    for path in paths:
        if not path.is_file():
            raise SystemExit(f"{path}: no such questions file")
        with path.open() as lines:
            for line in lines:
                if line.strip():
                    row = json.loads(line)
                    questions.append(str(row["question"] if "question" in row else row["text"]))
    if not questions:
        raise SystemExit("no questions found")
    order = np.random.default_rng(seed).permutation(len(questions))
    return [questions[i] for i in order]


# --- timing proxies: the retriever runs unchanged, each stage is timed where it is called ----


class TimedEmbedder:
    """The product's embedder, with the time of each ``embed_query`` recorded."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.times_ms: list[float] = []

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def warm_up(self) -> None:
        self.inner.warm_up()

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        started = time.perf_counter()
        vector = self.inner.embed_query(text)
        self.times_ms.append((time.perf_counter() - started) * 1000)
        return vector


class TimedStore:
    """The product's store, with the time of each ``search`` recorded."""

    def __init__(self, inner: VectorStore) -> None:
        self.inner = inner
        self.times_ms: list[float] = []
        self.short: int = 0  # searches that returned fewer hits than asked
        self.hit_ids: list[list[str]] = []

    @property
    def collection(self) -> str:
        return self.inner.collection

    @property
    def info(self) -> CollectionInfo:
        return self.inner.info

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        self.inner.upsert(chunks, vectors)

    def delete(self, ids: Sequence[str]) -> None:
        self.inner.delete(ids)

    def delete_source(self, source: str) -> None:
        self.inner.delete_source(source)

    def search(self, query: SearchQuery) -> list[Hit]:
        started = time.perf_counter()
        hits = self.inner.search(query)
        self.times_ms.append((time.perf_counter() - started) * 1000)
        self.short += len(hits) < query.k
        self.hit_ids.append([h.chunk.id for h in hits])
        return hits

    def search_one(
        self, using: SingleVector, *, text: str, vector: np.ndarray | None, k: int
    ) -> list[Hit]:
        return self.inner.search_one(using, text=text, vector=vector, k=k)

    def fetch(self, ids: Sequence[str]) -> list[tuple[Chunk, np.ndarray]]:
        return self.inner.fetch(ids)

    def recommend(self, ids: Sequence[str], *, k: int, exclude_source: str | None) -> list[Hit]:
        return self.inner.recommend(ids, k=k, exclude_source=exclude_source)

    def scan_vectors(
        self, *, fields: Sequence[str], batch: int = 1024
    ) -> Iterator[tuple[list[str], list[dict[str, Any]], np.ndarray]]:
        return self.inner.scan_vectors(fields=fields, batch=batch)

    def point_ids(self) -> set[str]:
        return self.inner.point_ids()

    def source_chunks(self, source: str) -> list[Chunk]:
        return self.inner.source_chunks(source)

    def containing(self, text: str, *, source_prefix: str | None = None) -> list[Chunk]:
        return self.inner.containing(text, source_prefix=source_prefix)

    def count(self, *, exact: bool = True) -> int:
        return self.inner.count(exact=exact)

    def word_counts(self, words: Sequence[str], *, up_to: int) -> dict[str, int]:
        return self.inner.word_counts(words, up_to=up_to)

    def flush(self) -> None:
        self.inner.flush()

    def build_index(self) -> bool:
        return self.inner.build_index()

    def close(self) -> None:
        self.inner.close()


# --- 2. retrieval latency in process ----------------------------------------------------------


@dataclass
class LatencyResult:
    collection: str
    size: int
    threads: int
    questions: int
    embed: dict[str, float]
    search: dict[str, float]
    total: dict[str, float]
    short_results: int
    load_before: str
    load_after: str
    profile: str = ""
    hit_ids: list[list[str]] = field(default_factory=list, repr=False)
    agreement: float | None = None
    """Share of the top-k ids also found by the product's own collection (optimized copy)."""


@functools.cache
def default_torch_threads() -> int:
    """Torch's own choice (the number of cores), read before any run changes it."""
    import torch

    return int(torch.get_num_threads())


def set_torch_threads(threads: int) -> int:
    """Set torch's intra-op threads (0: its default); returns the number in effect."""
    import torch

    torch.set_num_threads(threads if threads > 0 else default_torch_threads())
    return int(torch.get_num_threads())


def measure_latency(
    settings: Settings,
    embedder: Embedder,
    questions: Sequence[str],
    *,
    size: int,
    warmup: int,
    threads: int,
    profile: int,
) -> LatencyResult:
    timed_embedder = TimedEmbedder(embedder)
    store = open_collection(settings, embedder)
    timed_store = TimedStore(store)
    try:
        retriever = HybridRetriever(timed_embedder, timed_store, settings)
        in_effect = set_torch_threads(threads)
        for question in questions[:warmup]:
            retriever.search(question)
        timed_embedder.times_ms.clear()
        timed_store.times_ms.clear()
        timed_store.short = 0
        timed_store.hit_ids.clear()
        load_before = load_average()
        totals: list[float] = []
        for question in questions[warmup:]:
            started = time.perf_counter()
            retriever.search(question)
            totals.append((time.perf_counter() - started) * 1000)
        load_after = load_average()
        result = LatencyResult(
            collection=settings.collection,
            size=size,
            threads=in_effect,
            questions=len(totals),
            embed=summary(timed_embedder.times_ms),
            search=summary(timed_store.times_ms),
            total=summary(totals),
            short_results=timed_store.short,
            load_before=load_before,
            load_after=load_after,
            hit_ids=list(timed_store.hit_ids),
        )
        if profile:
            result.profile = profile_queries(retriever, questions[warmup : warmup + profile])
        return result
    finally:
        store.close()


def profile_queries(retriever: HybridRetriever, questions: Sequence[str]) -> str:
    """cProfile of the retrieval path: where the time goes inside one query."""
    profiler = cProfile.Profile()
    profiler.enable()
    for question in questions:
        retriever.search(question)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(18)
    return f"cProfile of {len(questions)} queries, by own time:\n{out.getvalue()}"


# --- 3. /v1/search throughput against `rag serve` ---------------------------------------------


@dataclass
class ThroughputResult:
    collection: str
    omp_threads: str
    clients: int
    seconds: float
    requests: int
    errors: int
    requests_per_s: float
    latency: dict[str, float]
    error_samples: list[str] = field(default_factory=list)
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    load_before: str = ""
    load_after: str = ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running_server(data_dir: Path, collection: str, threads: int) -> Iterator[tuple[str, int]]:
    """`rag serve` on a free loopback port; yields (base URL, pid). Stopped with SIGINT so the
    lifespan closes the store (it holds the Edge shard's lock) and flushes it."""
    port = free_port()
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(data_dir),
        "RAG_COLLECTION": collection,
        "RAG_MODEL_CACHE_DIR": str(model_cache()),
        "RAG_LOG_LEVEL": "WARNING",
        "RAG_API_KEYS": "",
    }
    if threads > 0:
        # torch reads it at start; the server has no setting of its own for it.
        env["OMP_NUM_THREADS"] = str(threads)
    log = tempfile.NamedTemporaryFile("w+", prefix="bench-query-serve-", suffix=".log")  # noqa: SIM115
    command = [sys.executable, "-m", "rag.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        yield url, proc.pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Any, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise SystemExit(f"rag serve exited ({proc.returncode}):\n{log.read()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise SystemExit(f"rag serve did not answer /healthz within {timeout:.0f} s")


async def drive(
    url: str, questions: Sequence[str], *, clients: int, seconds: float, warmup: int
) -> tuple[float, list[float], int, list[str]]:
    """``clients`` concurrent loops, each sending its next question as soon as the previous
    answer arrived. Returns (elapsed s, latencies ms of successes, errors, error samples)."""
    latencies: list[float] = []
    errors = 0
    samples: list[str] = []
    next_index = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        for question in questions[:warmup]:
            await client.post("/v1/search", json={"query": question, "k": 5})
        deadline = time.perf_counter() + seconds

        async def one_client() -> None:
            nonlocal next_index, errors
            while time.perf_counter() < deadline:
                question = questions[next_index % len(questions)]
                next_index += 1
                started = time.perf_counter()
                try:
                    response = await client.post("/v1/search", json={"query": question, "k": 5})
                except httpx.HTTPError as exc:
                    errors += 1
                    if len(samples) < 5:
                        samples.append(f"{type(exc).__name__}: {exc}")
                    continue
                if response.status_code == 200 and response.json().get("hits") is not None:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors += 1
                    if len(samples) < 5:
                        samples.append(f"{response.status_code}: {response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, errors, samples


def measure_throughput(
    data_dir: Path,
    collection: str,
    questions: Sequence[str],
    *,
    clients_list: Sequence[int],
    seconds: float,
    warmup: int,
    threads: int,
) -> list[ThroughputResult]:
    results: list[ThroughputResult] = []
    with running_server(data_dir, collection, threads) as (url, pid):
        server = psutil.Process(pid)
        for clients in clients_list:
            load_before = load_average()
            server_cpu = sum(server.cpu_times()[:2])
            client_cpu = time.process_time()
            elapsed, latencies, errors, samples = asyncio.run(
                drive(url, questions, clients=clients, seconds=seconds, warmup=warmup)
            )
            results.append(
                ThroughputResult(
                    collection=collection,
                    omp_threads=str(threads) if threads > 0 else "unset",
                    clients=clients,
                    seconds=round(elapsed, 2),
                    requests=len(latencies),
                    errors=errors,
                    requests_per_s=len(latencies) / elapsed,
                    latency=summary(latencies),
                    error_samples=samples,
                    server_cpu_s=round(sum(server.cpu_times()[:2]) - server_cpu, 1),
                    client_cpu_s=round(time.process_time() - client_cpu, 1),
                    load_before=load_before,
                    load_after=load_average(),
                )
            )
    return results


# --- report ----------------------------------------------------------------------------------


def ms(stats: dict[str, float], key: str) -> str:
    return f"{stats[key]:.1f}" if key in stats else "-"


def agreement(ours: Sequence[Sequence[str]], reference: Sequence[Sequence[str]]) -> float:
    """Mean share of the reference's top-k ids that ``ours`` found too, question by question."""
    shares = [
        len(set(a) & set(b)) / len(b) for a, b in zip(ours, reference, strict=True) if len(b) > 0
    ]
    return float(np.mean(shares)) if shares else 0.0


def print_report(
    manifests: Sequence[Manifest],
    latency: Sequence[LatencyResult],
    throughput: Sequence[ThroughputResult],
    settings: Settings,
) -> None:
    print(
        f"Retrieval settings: fusion={settings.fusion} prefetch_k={settings.prefetch_k} "
        f"top_k={settings.top_k}; machine: {os.cpu_count()} CPUs"
    )
    for m in manifests:
        real = ", ".join(f"{label} {n:,}" for label, n in m.real.items())
        optimized = ""
        if m.optimize_seconds is not None:
            optimized = f"; then build_index() {m.optimize_seconds:.0f} s, as ingestion runs it"
        print(
            f"Collection {m.collection}: {m.size:,} chunks = {m.real_total:,} real ({real}) "
            f"+ {m.synthetic:,} synthetic (built in {m.build_seconds:.0f} s{optimized})"
        )
    if latency:
        print("\nRetrieval latency in process (ms): HybridRetriever.search = embed + search")
        width = max(len(r.collection) for r in latency)
        header = (
            f"{'collection':<{width}} {'thr':>3} {'n':>5} | {'stage':<6} {'p50':>6} {'p95':>6} "
            f"{'p99':>6} {'mean':>6} {'max':>7} | load before -> after"
        )
        print(header)
        print("-" * len(header))
        for r in latency:
            for name, stats in (("embed", r.embed), ("search", r.search), ("total", r.total)):
                first = name == "embed"
                lead = f"{r.collection:<{width}} {r.threads:>3} {r.questions:>5}" if first else ""
                tail = f" | {r.load_before} -> {r.load_after}" if first else " |"
                print(
                    f"{lead:<{width + 10}} | {name:<6} {ms(stats, 'p50'):>6} "
                    f"{ms(stats, 'p95'):>6} {ms(stats, 'p99'):>6} {ms(stats, 'mean'):>6} "
                    f"{ms(stats, 'max'):>7}{tail}"
                )
            notes = []
            if r.short_results:
                notes.append(f"{r.short_results} searches returned fewer than top_k hits")
            if r.agreement is not None:
                reference = r.collection.removesuffix("-optimized")
                notes.append(
                    f"top-{settings.top_k} ids shared with {reference}: {100 * r.agreement:.1f}%"
                )
            for note in notes:
                print(f"{'':<{width + 10}} | {note}")
    if throughput:
        print("\nPOST /v1/search throughput against `rag serve` on loopback")
        width = max(len(t.collection) for t in throughput)
        header = (
            f"{'collection':<{width}} {'omp':>5} {'clients':>7} {'secs':>5} {'reqs':>6} "
            f"{'err':>4} {'req/s':>6} | {'p50':>6} {'p95':>6} {'p99':>7} {'max':>7} | "
            "cpu s srv/cli | load before -> after"
        )
        print(header)
        print("-" * len(header))
        for t in throughput:
            print(
                f"{t.collection:<{width}} {t.omp_threads:>5} {t.clients:>7} {t.seconds:>5.0f} "
                f"{t.requests:>6} {t.errors:>4} {t.requests_per_s:>6.1f} | "
                f"{ms(t.latency, 'p50'):>6} {ms(t.latency, 'p95'):>6} "
                f"{ms(t.latency, 'p99'):>7} {ms(t.latency, 'max'):>7} | "
                f"{t.server_cpu_s:>6.1f}/{t.client_cpu_s:<6.1f} | "
                f"{t.load_before} -> {t.load_after}"
            )
            for sample in t.error_samples:
                print(f"        error: {sample}")
        print("(omp: OMP_NUM_THREADS given to the server; cpu s: CPU seconds used by the server")
        print(" process and by this load generator during the run)")
    for r in latency:
        if r.profile:
            print(f"\n{r.collection}, {r.threads} torch threads: {r.profile}")


def int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, required=True, help="Where the benchmark collections are kept."
    )
    parser.add_argument("--size", type=int, default=100_000, help="Chunks in the collection.")
    parser.add_argument(
        "--scaling", type=int_list, default=[], help="Also measure these sizes, e.g. 10000."
    )
    parser.add_argument(
        "--source",
        type=Path,
        action="append",
        default=[],
        help="Data dir with product collections to take real chunks from (repeatable).",
    )
    parser.add_argument(
        "--fallback-corpus",
        type=Path,
        help="BEIR corpus.jsonl to embed documents from when no --source has a collection.",
    )
    parser.add_argument(
        "--fallback-real",
        type=int,
        default=2000,
        help="Documents of --fallback-corpus to embed.",
    )
    parser.add_argument(
        "--questions",
        type=Path,
        action="append",
        help="JSONL of questions (repeatable; 'question' or 'text' field). Default: the "
        "Python 3.11 dev set in bench/qa/.",
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--queries", type=int, default=0, help="Measured questions (0: all).")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--threads", type=int_list, default=[0], help="Torch threads to try (0: its default)."
    )
    parser.add_argument("--profile", type=int, default=0, help="cProfile this many queries.")
    parser.add_argument(
        "--compare-optimized",
        action="store_true",
        help="Also measure a copy of the --size collection after the store's build_index() "
        "(HNSW index), as rag ingest runs it.",
    )
    parser.add_argument(
        "--clients", type=int_list, default=[16], help="Concurrent /v1/search clients."
    )
    parser.add_argument("--seconds", type=float, default=30, help="Per client count.")
    parser.add_argument("--no-serve", action="store_true", help="Skip the throughput phase.")
    parser.add_argument(
        "--serve-threads",
        type=int_list,
        default=[0],
        help="OMP_NUM_THREADS values for the server, one server each (0: unset).",
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead.")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    questions = load_questions(args.questions or [DEV_SET], args.seed)
    if args.queries:
        questions = questions[: args.warmup + args.queries]
    print(f"load average at start: {load_average()}", file=sys.stderr)
    # Folder metadata gives the model name and dimension; torch loads on the first query.
    embedder = build_embedder(settings_for(args.data_dir))
    default_torch_threads()

    manifests: list[Manifest] = []
    for size in sorted({*args.scaling, args.size}):
        print(f"collection bench-{size} ...", file=sys.stderr)
        manifests.append(
            build_collection(
                args.data_dir,
                f"bench-{size}",
                embedder,
                size=size,
                seed=args.seed,
                sources=args.source,
                fallback_corpus=args.fallback_corpus,
                fallback_real=args.fallback_real,
            )
        )
    main_collection = f"bench-{args.size}"
    if args.compare_optimized:
        print(f"optimized copy of {main_collection} ...", file=sys.stderr)
        built = next(m for m in manifests if m.collection == main_collection)
        manifests.append(optimized_copy(args.data_dir, built, embedder))

    latency: list[LatencyResult] = []
    for m in manifests:
        for threads in args.threads:
            print(
                f"  latency {m.collection}, torch threads {threads or 'default'} ...",
                file=sys.stderr,
            )
            latency.append(
                measure_latency(
                    settings_for(args.data_dir, m.collection),
                    embedder,
                    questions,
                    size=m.size,
                    warmup=args.warmup,
                    threads=threads,
                    profile=args.profile if m.collection == main_collection else 0,
                )
            )
    for r in latency:
        if r.collection.endswith("-optimized"):
            reference = next(
                x
                for x in latency
                if x.collection == r.collection.removesuffix("-optimized")
                and x.threads == r.threads
            )
            r.agreement = agreement(r.hit_ids, reference.hit_ids)

    throughput: list[ThroughputResult] = []
    if not args.no_serve:
        targets = [main_collection] + (
            [f"{main_collection}-optimized"] if args.compare_optimized else []
        )
        for collection in targets:
            for omp in args.serve_threads:
                print(
                    f"throughput on {collection}, OMP_NUM_THREADS {omp or 'unset'}, "
                    f"{args.clients} clients ...",
                    file=sys.stderr,
                )
                throughput += measure_throughput(
                    args.data_dir,
                    collection,
                    questions,
                    clients_list=args.clients,
                    seconds=args.seconds,
                    warmup=args.warmup,
                    threads=omp,
                )
    print(f"load average at end: {load_average()}", file=sys.stderr)
    settings = settings_for(args.data_dir)
    if args.json:
        report = {
            "settings": {
                "fusion": settings.fusion,
                "prefetch_k": settings.prefetch_k,
                "top_k": settings.top_k,
            },
            "cpus": os.cpu_count(),
            "collections": [asdict(m) | {"real_total": m.real_total} for m in manifests],
            "latency_ms": [{k: v for k, v in asdict(r).items() if k != "hit_ids"} for r in latency],
            "throughput": [asdict(t) for t in throughput],
        }
        print(json.dumps(report, indent=2))
    else:
        print_report(manifests, latency, throughput, settings)


if __name__ == "__main__":
    main()
