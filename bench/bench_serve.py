"""`rag serve` as a user meets it: start-up time, memory, and streamed answer latency over HTTP.

    RAG_DATA_DIR=DIR RAG_COLLECTION=NAME \
        python bench/bench_serve.py [--questions FILE.jsonl] [--n 20] [--port 8765]
        [--modes live,checked] [--json]

The server takes the usual RAG_* settings from the environment; its collection must hold the
documents the questions are about (by default the Python 3.11 dev set in bench/qa/, whose
collection is the Python 3.11 HTML docs ingested with `rag ingest`).

Starts the real server in a subprocess (weights already cached), times it until /healthz
answers, then streams /v1/chat/completions answers for dev-set questions in each stream mode
(a fresh server per mode, as RAG_STREAM_MODE is a server setting) and reads the server's
resident memory (VmRSS, and the peak VmHWM) from /proc. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from rag.evaluation import percentile

DEFAULT_QUESTIONS = Path(__file__).parent / "qa" / "python311_dev.jsonl"


def memory_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def start_server(port: int, mode: str) -> tuple[subprocess.Popen[bytes], float]:
    env = {**os.environ, "RAG_PORT": str(port), "RAG_STREAM_MODE": mode}
    started = time.perf_counter()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "rag"), "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/healthz"
    while True:
        if server.poll() is not None:
            raise SystemExit(
                f"server exited: {server.stderr.read().decode() if server.stderr else ''}"
            )
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return server, time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.05)


def stream_answer(client: httpx.Client, model: str, question: str) -> tuple[float, float, int]:
    """(seconds to the first content, seconds to the end, content pieces)."""
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": question}]}
    asked = time.perf_counter()
    first: float | None = None
    pieces = 0
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            choices = chunk.get("choices") or [{}]
            if choices[0].get("delta", {}).get("content"):
                pieces += 1
                if first is None:
                    first = time.perf_counter() - asked
    return (first or 0.0), time.perf_counter() - asked, pieces


def measure(port: int, mode: str, questions: list[str]) -> dict[str, Any]:
    server, ready_s = start_server(port, mode)
    try:
        idle_mb, _ = memory_mb(server.pid)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
            model = client.get("/v1/models").json()["data"][0]["id"]
            stream_answer(client, model, "How do I warm up?")  # first request pays one-time costs
            timings = [stream_answer(client, model, q) for q in questions]
        rss_mb, peak_mb = memory_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    ttft = [t for t, _, _ in timings]
    total = [t for _, t, _ in timings]
    return {
        "stream_mode": mode,
        "ready_s": round(ready_s, 2),
        "questions": len(timings),
        "ttft_p50_s": round(percentile(ttft, 50), 3),
        "ttft_p95_s": round(percentile(ttft, 95), 3),
        "answer_p50_s": round(percentile(total, 50), 2),
        "answer_mean_s": round(statistics.mean(total), 2),
        "rss_idle_mb": round(idle_mb),
        "rss_after_mb": round(rss_mb),
        "rss_peak_mb": round(peak_mb),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--questions",
        type=Path,
        default=DEFAULT_QUESTIONS,
        help="JSONL with 'question' and optional 'unanswerable' (default: the dev set)",
    )
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--modes", default="live,checked")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    questions = [r["question"] for r in rows if not r.get("unanswerable")][: args.n]
    results = [measure(args.port, mode, questions) for mode in args.modes.split(",")]
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
        return
    keys = list(results[0])
    print(" | ".join(keys))
    for result in results:
        print(" | ".join(str(result[k]) for k in keys))


if __name__ == "__main__":
    main()
