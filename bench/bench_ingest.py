"""Ingestion benchmark: first run, no-op re-run, one edited file, peak memory at 1x and 4x.

    python bench/bench_ingest.py DOCS [--every N] [--copies 1,4] [--model-cache DIR]

DOCS is a folder of HTML pages (the documented figures use the PostgreSQL 15 HTML docs).
`--every N` takes every Nth page in sorted order (N=1: the whole folder). Each run is a real
`rag ingest` subprocess with a fresh data dir and the shared model cache (`--model-cache`,
default: the cache the current settings use), so converted weights are reused as after a
user's first run. Peak RSS is the child's maximum resident set,
and beside it the peak of its anonymous part (Linux: RssAnon), the process's own memory. The
rest is mostly file pages: the libraries' code and the store's memory-mapped files, which grow
with the collection and which the kernel can reclaim.
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs installed


def anonymous_mb(pid: int) -> float:
    """RssAnon of a process in MB (Linux), 0 where /proc does not say."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_ingest(
    folder: Path, data: Path, models: Path
) -> tuple[float, tuple[float, float], dict[str, Any]]:
    """Wall seconds, peak RSS and peak anonymous RSS in MB of this child, and the JSON report."""
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(data),
        "RAG_MODEL_CACHE_DIR": str(models),
        "RAG_LOG_LEVEL": "WARNING",
    }
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "ingest", str(folder), "--json"],
            env=env,
            stdout=stdout,
            stderr=stderr,
            text=True,
        )
        watched = psutil.Process(proc.pid)
        peak, anon = 0, 0.0
        while proc.poll() is None:  # sampled: ru_maxrss of children is cumulative
            with contextlib.suppress(psutil.Error):
                peak = max(peak, watched.memory_info().rss)
            anon = max(anon, anonymous_mb(proc.pid))
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        if proc.returncode not in (0, 1):
            stderr.seek(0)
            raise SystemExit(f"rag ingest failed ({proc.returncode}): {stderr.read()[-2000:]}")
        stdout.seek(0)
        report: dict[str, Any] = json.loads(stdout.read())
    return seconds, (peak / 2**20, anon), report


def default_model_cache() -> Path:
    """The model cache of the current settings (RAG_MODEL_CACHE_DIR, else DATA_DIR/models)."""
    from rag.config import Settings

    return Settings().models_dir


def subset(docs: Path, target: Path, every: int, copies: int) -> int:
    pages = sorted(p for p in docs.rglob("*") if p.is_file() and p.suffix in (".html", ".htm"))
    chosen = pages[::every]
    for copy in range(copies):
        for page in chosen:
            dest = target / f"copy{copy}" / page.relative_to(docs)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(page, dest)
    return len(chosen) * copies


def warm_edits(
    corpus: Path, data: Path, models: Path, edited: Path, times: int = 3
) -> list[tuple[str, str]]:
    """One file edited again and again, synced by one process that stays up, as `rag ingest
    --watch` and the API's ingestion do: no process start, imports or model load."""
    from ingest.runs import run_ingest as ingest_in_process
    from rag.config import Settings
    from rag.embedding import build_embedder

    settings = Settings(data_dir=data, model_cache_dir=models)
    embedder = build_embedder(settings, bulk=True)
    rows = []
    for n in range(times):
        edited.write_text(edited.read_text() + f"<p>Edit {n} in a running process.</p>")
        started = time.perf_counter()
        report = ingest_in_process(settings, [corpus], embedder=embedder)
        seconds = time.perf_counter() - started
        rows.append(
            (
                f"  in a running process, edit {n + 1}",
                f"{seconds:.2f} s = {report.embed_seconds:.2f} s embedding "
                f"{report.chunks_written} chunks + {seconds - report.embed_seconds:.2f} s else"
                + (" (first: loads the model)" if n == 0 else ""),
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("docs", type=Path, help="folder of HTML pages to ingest")
    parser.add_argument("--every", type=int, default=1, help="every Nth page (1: all)")
    parser.add_argument("--copies", default="1,4", help="corpus sizes, in copies of the pages")
    parser.add_argument(
        "--model-cache", type=Path, help="converted model weights (default: the settings' cache)"
    )
    args = parser.parse_args()
    if not args.docs.is_dir():
        raise SystemExit(f"{args.docs}: not a folder")
    models = (args.model_cache or default_model_cache()).resolve()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for copies in (int(c) for c in args.copies.split(",")):
            corpus = root / f"corpus{copies}"
            pages = subset(args.docs, corpus, args.every, copies)
            data = root / f"data{copies}"
            seconds, (rss, anon), report = run_ingest(corpus, data, models)
            chunks = int(report["chunks_written"])
            rows.append(
                (
                    f"{copies}x first ingestion ({pages} pages)",
                    f"{seconds:.1f} s, {chunks} chunks, {chunks / seconds:.1f} chunks/s, "
                    f"peak RSS {rss:.0f} MB" + (f" (anonymous {anon:.0f} MB)" if anon else ""),
                )
            )
            if copies != 1:
                continue
            noop, _, report = run_ingest(corpus, data, models)
            rows.append(
                (
                    "1x no-op second run",
                    f"{noop:.2f} s ({100 * noop / seconds:.1f}% of the first), "
                    f"{len(report['unchanged'])} unchanged",
                )
            )
            edited = sorted(corpus.rglob("*.html"))[pages // 2]
            edited.write_text(edited.read_text() + "<p>An edited paragraph for the benchmark.</p>")
            edit, _, report = run_ingest(corpus, data, models)
            rows.append(
                (
                    "1x after editing one file",
                    f"{edit:.2f} s = {report['embed_seconds']:.2f} s embedding "
                    f"{report['chunks_written']} chunks ({report['chunks_reused']} reused) + "
                    f"{edit - float(report['embed_seconds']):.2f} s for everything else",
                )
            )
            rows += warm_edits(corpus, data, models, edited)
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("(each run includes process start and, when something is embedded, the model load)")


if __name__ == "__main__":
    main()
