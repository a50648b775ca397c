"""The local model's decoding alone: the same prompts decoded one after another, then at once.

    RAG_DATA_DIR=DIR RAG_COLLECTION=NAME \
        python bench/bench_decode.py [--questions FILE.jsonl] [--n 8] [--max-tokens 64] [--json]

The prompts are the product's own: the first ``--n`` answerable dev-set questions that do not
abstain, prepared as for an answer (retrieval, supporting sentences, prompt). Only decoding is
timed, through the generator's ``stream`` (with RAG_LLM_BATCH_SIZE above 1, the batched
decoder): no retrieval, grounding check or fallback judge, which ``bench_concurrency.py``
includes. Tokens are counted by the model's tokenizer on each streamed answer. Prints numbers;
asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.generation import Generator, Message
from rag.query import open_answerer

DEFAULT_QUESTIONS = Path(__file__).parent / "qa" / "python311_dev.jsonl"


def decode(
    generator: Generator, prompts: list[list[Message]], limit: int, *, together: bool
) -> dict[str, Any]:
    """Tokens and time to the first token of each prompt's answer, and the wall time."""
    firsts: list[float] = [0.0] * len(prompts)
    tokens: list[int] = [0] * len(prompts)
    started = time.perf_counter()

    def one(i: int) -> None:
        asked = time.perf_counter()
        pieces: list[str] = []
        for piece in generator.stream(prompts[i], max_new_tokens=limit):
            if not pieces:
                firsts[i] = time.perf_counter() - (started if together else asked)
            pieces.append(piece)
        tokens[i] = generator.count_tokens("".join(pieces))

    if together:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        for i in range(len(prompts)):
            one(i)
    wall = time.perf_counter() - started
    return {
        "tokens": sum(tokens),
        "wall_s": round(wall, 2),
        "tokens_per_s": round(sum(tokens) / wall, 2),
        "first_token_max_s": round(max(firsts), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--n", type=int, default=8, help="prompts decoded together")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    questions = [r["question"] for r in rows if not r.get("unanswerable")]
    settings = Settings(answer_mode="generate")
    with open_answerer(settings) as answerer:
        generator = answerer.generator
        prompts: list[list[Message]] = []
        for question in questions:
            prepared = answerer.prepare(question)
            if not prepared.abstained:
                prompts.append(prepared.messages)
            if len(prompts) == args.n:
                break
        decode(generator, prompts[:1], 4, together=False)  # one-time costs, as in a server
        alone = decode(generator, prompts, args.max_tokens, together=False)
        together = decode(generator, prompts, args.max_tokens, together=True)
        prompt_tokens = [generator.prompt_tokens(p) for p in prompts]
    result = {
        "prompts": len(prompts),
        "prompt_tokens_mean": round(sum(prompt_tokens) / len(prompt_tokens)),
        "batch_size": settings.llm_batch_size,
        "one_after_another": alone,
        "at_once": together,
        "speed_up": round(together["tokens_per_s"] / alone["tokens_per_s"], 2),
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    for key, value in result.items():
        print(f"{key:20} {value}")


if __name__ == "__main__":
    main()
