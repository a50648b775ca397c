"""A running `rag serve` under mixed load: searches, chats and a slow streaming reader at once.

    python bench/bench_load.py --url http://127.0.0.1:8000 [--key KEY] [--model rag-default]
        [--seconds 60] [--search-clients 50] [--chat-clients 8]
        [--query "..."]... [--question "..."]... [--json]

For ``--seconds``: ``--search-clients`` clients send POST /v1/search back to back, each with
the next of the ``--query`` texts; ``--chat-clients`` clients send non-streamed
POST /v1/chat/completions with the next ``--question``, and after a 429 wait for its
Retry-After; one client streams a chat answer and reads it 64 bytes a second, again and again;
/healthz is probed every 100 ms. Prints, per class, requests/s, p50/p95/p99 latency of the
answered requests, and the errors by status (429 counted apart: deliberate refusals), and the
worst /healthz latency. Only loopback or a server you own: this is load. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from rag.evaluation import percentile

SLOW_READ_BYTES = 64


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)

    def record(self, status: str, seconds: float) -> None:
        self.statuses[status] += 1
        if status == "200":
            self.latencies.append(seconds)

    def summary(self, seconds: float) -> dict[str, Any]:
        ms = [s * 1000 for s in self.latencies]
        return {
            "answered": len(ms),
            "requests_per_s": round(len(ms) / seconds, 2),
            "p50_ms": round(percentile(ms, 50), 1),
            "p95_ms": round(percentile(ms, 95), 1),
            "p99_ms": round(percentile(ms, 99), 1),
            "max_ms": round(max(ms, default=0.0), 1),
            "refused_429": self.statuses.get("429", 0),
            "errors": {k: v for k, v in sorted(self.statuses.items()) if k not in ("200", "429")},
        }


async def timed(tally: Tally, send: Any) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response: httpx.Response = await send()
    except httpx.HTTPError as exc:
        tally.record(type(exc).__name__, time.perf_counter() - started)
        return None
    tally.record(str(response.status_code), time.perf_counter() - started)
    return response


async def search_client(
    client: httpx.AsyncClient, queries: list[str], start: int, until: float, tally: Tally
) -> None:
    i = start
    while time.monotonic() < until:
        body = {"query": queries[i % len(queries)], "k": 5}
        await timed(tally, lambda b=body: client.post("/v1/search", json=b))
        i += 1


async def chat_client(
    client: httpx.AsyncClient,
    model: str,
    questions: list[str],
    start: int,
    until: float,
    tally: Tally,
) -> None:
    i = start
    while time.monotonic() < until:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": questions[i % len(questions)]}],
        }
        response = await timed(tally, lambda b=body: client.post("/v1/chat/completions", json=b))
        i += 1
        if response is not None and response.status_code == 429:
            wait = float(response.headers.get("Retry-After", "1"))
            await asyncio.sleep(min(wait, max(0.0, until - time.monotonic())))


async def slow_reader(url: str, key: str | None, model: str, question: str, until: float) -> int:
    """Stream answers, reading each 64 bytes a second; returns how many were read whole."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payload = json.dumps(
        {"model": model, "stream": True, "messages": [{"role": "user", "content": question}]}
    ).encode()
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    finished = 0
    while time.monotonic() < until:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(head + payload)
            await writer.drain()
            while time.monotonic() < until:
                data = await reader.read(SLOW_READ_BYTES)
                if not data:
                    finished += 1
                    break
                await asyncio.sleep(1)
        finally:
            writer.close()
    return finished


async def probe_health(client: httpx.AsyncClient, until: float, tally: Tally) -> None:
    while time.monotonic() < until:
        await timed(tally, lambda: client.get("/healthz"))
        await asyncio.sleep(0.1)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    # Idle connections are dropped before the server's keep-alive timeout (uvicorn: 5 s) can
    # close one just as it is reused, which the client would see as an error of the server.
    limits = httpx.Limits(
        max_connections=args.search_clients + args.chat_clients + 10, keepalive_expiry=2.0
    )
    tallies = {name: Tally() for name in ("search", "chat", "healthz")}
    queries = args.query or ["How do I configure the service?"]
    questions = args.question or ["How do I configure the service?"]
    async with httpx.AsyncClient(
        base_url=args.url, headers=headers, timeout=args.timeout, limits=limits
    ) as client:
        started = time.monotonic()
        until = started + args.seconds
        tasks = [
            *(
                search_client(client, queries, i, until, tallies["search"])
                for i in range(args.search_clients)
            ),
            *(
                chat_client(client, args.model, questions, i, until, tallies["chat"])
                for i in range(args.chat_clients)
            ),
            probe_health(client, until, tallies["healthz"]),
        ]
        slow = asyncio.ensure_future(
            slow_reader(args.url, args.key, args.model, questions[0], until)
        )
        await asyncio.gather(*tasks)
        streams = await slow
        elapsed = time.monotonic() - started
    report: dict[str, Any] = {name: t.summary(elapsed) for name, t in tallies.items()}
    report["slow_reader"] = {"streams_read_whole": streams}
    report["seconds"] = round(elapsed, 1)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--key", default=None, help="an API key, when the server needs one")
    parser.add_argument("--model", default="rag-default", help="the chat model (collection)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--search-clients", type=int, default=50)
    parser.add_argument("--chat-clients", type=int, default=8)
    parser.add_argument("--query", action="append", help="a search text (repeatable)")
    parser.add_argument("--question", action="append", help="a chat question (repeatable)")
    parser.add_argument("--timeout", type=float, default=120.0, help="per request, seconds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['seconds']} s against {args.url}")
    for name in ("search", "chat", "healthz"):
        r = report[name]
        print(
            f"{name:8} {r['requests_per_s']:8.2f} req/s  p50 {r['p50_ms']:8.1f} ms  "
            f"p95 {r['p95_ms']:8.1f} ms  p99 {r['p99_ms']:8.1f} ms  max {r['max_ms']:8.1f} ms  "
            f"429: {r['refused_429']}  errors: {r['errors'] or 'none'}"
        )
    print(f"slow reader: {report['slow_reader']['streams_read_whole']} streams read whole")


if __name__ == "__main__":
    main()
