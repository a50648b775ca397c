"""Concurrent chats against a real `rag serve`: throughput and latency with 1, 4, 8, 16 clients.

    RAG_DATA_DIR=DIR RAG_COLLECTION=NAME \
        python bench/bench_concurrency.py [--clients 1,4,8,16] [--questions FILE.jsonl]
        [--max-tokens N] [--rounds K] [--answer-mode generate|auto] [--json]

Starts one server (RAG_STREAM_MODE=live and RAG_ANSWER_MODE=generate, so tokens stream as the
model writes them; with ``--answer-mode auto``, the product's default answers instead, which
with the local model are quotes: no tokens are generated and only the times mean anything; the
other RAG_* settings, RAG_LLM_BATCH_SIZE included, come from the environment), warms it up,
then for each client count starts that many clients at once, each streaming
/v1/chat/completions for a different dev-set question. With ``--rounds K`` each client goes on
asking, a new question as soon as the previous answer ends, K questions in all: the first
questions arrive together (a burst), the later ones as the answers end (chats that go on at
once). Each client opens its connection pool before the round, as a chat frontend keeps one,
and measures from sending a question to the first content and to the end; the server's log
gives each generation's prompt and answer tokens and its own time to the first token. Prints
numbers; asserts nothing.

Aggregate tokens/s: answer tokens of all clients over the wall time of the round (from the
first question to the last answer's end). Per-request tokens/s: a generation's answer tokens
over its time after the first token. With ``--rounds`` above 1, the ``later_*`` figures are
those of every question but each client's first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from rag.evaluation import percentile

DEFAULT_QUESTIONS = Path(__file__).parent / "qa" / "python311_dev.jsonl"
_GENERATED = re.compile(
    r"generated (\d+) tokens after a prompt of (\d+) in ([\d.]+)s \(first after ([\d.]+)s\)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, log: Path, answer_mode: str) -> subprocess.Popen[bytes]:
    modes = {"RAG_STREAM_MODE": "live", "RAG_ANSWER_MODE": "generate"}
    env = {
        **os.environ,
        **(modes if answer_mode == "generate" else {"RAG_ANSWER_MODE": answer_mode}),
        "RAG_PORT": str(port),
        "RAG_LOG_LEVEL": "INFO",
        # 16 clients with 8 slots: the waiting ones must not time out of the queue.
        "RAG_GENERATION_QUEUE_TIMEOUT_SECONDS": os.environ.get(
            "RAG_GENERATION_QUEUE_TIMEOUT_SECONDS", "900"
        ),
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "rag"), "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    url = f"http://127.0.0.1:{port}/healthz"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.terminate()
    raise SystemExit("server did not become healthy")


def stream_answer(
    client: httpx.Client, model: str, question: str, max_tokens: int | None
) -> dict[str, Any]:
    """Seconds to the first content and to the end, or the error."""
    body: dict[str, Any] = {
        "model": model,
        "stream": True,
        "messages": [{"role": "user", "content": question}],
    }
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    asked = time.perf_counter()
    first: float | None = None
    try:
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                choices = json.loads(line[6:]).get("choices") or [{}]
                if choices[0].get("delta", {}).get("content") and first is None:
                    first = time.perf_counter() - asked
    except httpx.HTTPError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"ttft": first or 0.0, "total": time.perf_counter() - asked}


def round_of(
    url: str, model: str, questions: list[list[str]], max_tokens: int | None
) -> tuple[list[list[dict[str, Any]]], float]:
    """One client per list of ``questions``, all starting at once, each asking its questions
    one after the other; their results and the wall time."""
    results: list[list[dict[str, Any]]] = [[] for _ in questions]
    start = threading.Barrier(len(questions) + 1)

    def client(i: int) -> None:
        # Each client keeps one connection pool, as a chat frontend does. Building an
        # httpx.Client costs about 0.15 s of CPU (its TLS context), which would otherwise be
        # timed as the server's and taken from the server's cores in a burst.
        with httpx.Client(base_url=url, timeout=900) as session:
            start.wait()
            for question in questions[i]:
                results[i].append(stream_answer(session, model, question, max_tokens))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(questions))]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - began


def generations(log: Path, after: int) -> list[tuple[int, int, float, float]]:
    """(answer tokens, prompt tokens, seconds, seconds to first token) logged past ``after``."""
    text = log.read_bytes()[after:].decode(errors="replace")
    return [(int(m[1]), int(m[2]), float(m[3]), float(m[4])) for m in _GENERATED.finditer(text)]


def measure(
    url: str,
    model: str,
    log: Path,
    clients: int,
    questions: list[list[str]],
    max_tokens: int | None,
) -> dict[str, Any]:
    mark = log.stat().st_size
    per_client, wall = round_of(url, model, questions, max_tokens)
    time.sleep(0.5)  # the last log lines
    gens = generations(log, mark)
    results = [r for client in per_client for r in client]
    ok = [r for r in results if "error" not in r]
    ttft = [r["ttft"] for r in ok]
    total = [r["total"] for r in ok]
    later = [r for client in per_client for r in client[1:] if "error" not in r]
    tokens = sum(g[0] for g in gens)
    per_request = [g[0] / (g[2] - g[3]) for g in gens if g[2] > g[3] and g[0] > 1]
    prompts = [g[1] for g in gens]
    return {
        "clients": clients,
        "failed": len(results) - len(ok),
        "answer_tokens": tokens,
        "wall_s": round(wall, 1),
        "aggregate_tok_s": round(tokens / wall, 2),
        "per_request_tok_s": round(sum(per_request) / len(per_request), 2) if per_request else 0,
        "ttft_p50_s": round(percentile(ttft, 50), 2) if ttft else None,
        "ttft_p95_s": round(percentile(ttft, 95), 2) if ttft else None,
        "answer_p50_s": round(percentile(total, 50), 2) if total else None,
        "answer_p95_s": round(percentile(total, 95), 2) if total else None,
        **(
            {
                "questions": len(results),
                "later_ttft_p50_s": round(percentile([r["ttft"] for r in later], 50), 2),
                "later_ttft_p95_s": round(percentile([r["ttft"] for r in later], 95), 2),
                "later_answer_p95_s": round(percentile([r["total"] for r in later], 95), 2),
            }
            if later
            else {}
        ),
        "prompt_tokens_mean": round(sum(prompts) / len(prompts)) if prompts else 0,
        "model_first_token_p50_s": round(percentile([g[3] for g in gens], 50), 2) if gens else None,
        # Other processes on the machine slow every figure: the load says how busy it was.
        "load_avg_1min": float(Path("/proc/loadavg").read_text().split()[0]),
        "errors": sorted({r["error"] for r in results if "error" in r})[:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="1,4,8,16")
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument(
        "--rounds", type=int, default=1, help="questions each client asks, one after the other"
    )
    parser.add_argument("--answer-mode", choices=["generate", "auto"], default="generate")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    questions = [r["question"] for r in rows if not r.get("unanswerable")]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkdtemp()) / "serve.log"
    server = start_server(port, log, args.answer_mode)
    results = []
    try:
        model = httpx.get(f"{url}/v1/models", timeout=30).json()["data"][0]["id"]
        with httpx.Client(base_url=url, timeout=900) as session:  # one-time costs
            stream_answer(session, model, "How do I warm up?", 8)
        used = 0
        for clients in (int(c) for c in args.clients.split(",")):
            # A different question for every client and round.
            asked = [
                questions[used + i * args.rounds : used + (i + 1) * args.rounds]
                for i in range(clients)
            ]
            used += clients * args.rounds
            if used > len(questions):
                raise SystemExit(f"{args.questions} has too few questions for these rounds")
            results.append(measure(url, model, log, clients, asked, args.max_tokens))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
        return
    keys = [k for k in results[-1] if k != "errors"]
    print(" | ".join(keys))
    for result in results:
        print(" | ".join(str(result.get(k, "")) for k in keys))


if __name__ == "__main__":
    main()
