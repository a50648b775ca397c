"""Answer latency with the default local model: time to the first streamed token, full answer.

    RAG_DATA_DIR=DIR RAG_COLLECTION=NAME \
        python bench/bench_answer.py [--questions FILE.jsonl] [--n 30] [--json]

The collection (chosen by the usual RAG_* settings) must hold the documents the questions are
about; the questions default to the Python 3.11 dev set in bench/qa/, whose collection is the
Python 3.11 HTML docs ingested with `rag ingest`.

Each question goes through the product path (retrieve -> supporting sentences -> prompt ->
stream -> grounding check, and the quoted fallback when the check fails), timed from the
moment the question is asked. The model is loaded and warmed first, as in a running server.
Prints p50/p95 of time to first token, time to the last streamed token, time to the final
answer (after the check; with RAG_FALLBACK_JUDGE=llm this includes judging the fallback's
passages), how many answers were quoted, prompt tokens, generated tokens and tokens/s.
The model always generates (RAG_ANSWER_MODE=generate): quote mode has no decoding to time.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

from rag.config import Settings
from rag.evaluation import percentile
from rag.query import open_answerer

DEFAULT_QUESTIONS = Path(__file__).parent / "qa" / "python311_dev.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--questions",
        type=Path,
        default=DEFAULT_QUESTIONS,
        help="JSONL with 'question' and optional 'unanswerable' (default: the dev set)",
    )
    parser.add_argument("--n", type=int, default=30, help="answerable questions to ask")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    rows = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    questions = [r["question"] for r in rows if not r.get("unanswerable")][: args.n]
    # The model generates here whatever RAG_ANSWER_MODE says: this measures its decoding.
    settings = Settings(answer_mode="generate")
    ttft: list[float] = []
    total: list[float] = []
    final: list[float] = []
    judge_ms: list[float] = []
    quoted = 0
    prompt_tokens: list[int] = []
    new_tokens: list[int] = []
    rates: list[float] = []
    retrieve_ms: list[float] = []
    context_ms: list[float] = []
    with open_answerer(settings) as answerer:
        started = time.perf_counter()
        answerer.generator.warm_up()
        load_s = time.perf_counter() - started
        answerer.ask("How do I warm up?")  # first call pays one-time costs, as in a server
        for question in questions:
            asked = time.perf_counter()
            prepared = answerer.prepare(question)
            if prepared.abstained:
                continue
            first: float | None = None
            pieces: list[str] = []
            for piece in answerer.stream(prepared):
                if first is None:
                    first = time.perf_counter()
                pieces.append(piece)
            done = time.perf_counter()
            answer = answerer.finish(prepared, "".join(pieces))
            final.append(time.perf_counter() - asked)
            quoted += answer.extractive
            if "judge_ms" in answer.timings:
                judge_ms.append(answer.timings["judge_ms"])
            assert first is not None
            generated = answerer.generator.count_tokens("".join(pieces))
            retrieve_ms.append(prepared.timings["retrieve_ms"])
            context_ms.append(prepared.timings["context_ms"])
            ttft.append(first - asked)
            total.append(done - asked)
            prompt_tokens.append(answerer.generator.prompt_tokens(prepared.messages))
            new_tokens.append(generated)
            if done > first and generated > 1:
                rates.append((generated - 1) / (done - first))

    result = {
        "questions": len(ttft),
        "model_load_s": round(load_s, 2),
        "retrieve_p50_ms": round(statistics.median(retrieve_ms), 1),
        "context_p50_ms": round(statistics.median(context_ms), 1),
        "ttft_p50_s": round(percentile(ttft, 50), 3),
        "ttft_p95_s": round(percentile(ttft, 95), 3),
        "answer_p50_s": round(percentile(total, 50), 2),
        "answer_p95_s": round(percentile(total, 95), 2),
        "final_p50_s": round(percentile(final, 50), 2),
        "final_p95_s": round(percentile(final, 95), 2),
        "quoted_answers": quoted,
        "judge_p50_ms": round(statistics.median(judge_ms)) if judge_ms else None,
        "prompt_tokens_mean": round(statistics.mean(prompt_tokens), 1),
        "generated_tokens_mean": round(statistics.mean(new_tokens), 1),
        "decode_tokens_per_s": round(statistics.median(rates), 1) if rates else None,
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    for key, value in result.items():
        print(f"{key:24} {value}")


if __name__ == "__main__":
    main()
