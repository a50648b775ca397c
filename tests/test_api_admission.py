"""Admission control for generation: the gate's bound, wait limit and release, with fakes;
then the API's 429s through create_app."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from rag.api.admission import GenerationBusy, GenerationGate, Priority
from rag.api.app import create_app
from rag.api.state import ServiceState, collections_in_use
from rag.catalog import open_collection
from rag.config import Settings
from rag.generation import Message
from rag.generation.cancel import CancellableGenerator, GenerationCancelled
from tests.conftest import API_KEY, COFFEE_REPLY, _fill
from tests.fakes import HashEmbedder, ScriptedGenerator


def _gate(concurrency: int = 1, queue: int = 1, timeout: float = 30.0) -> GenerationGate:
    return GenerationGate(concurrency=concurrency, queue=queue, timeout=timeout)


def test_past_the_queue_bound_a_request_is_refused_at_once() -> None:
    async def scenario() -> None:
        gate = _gate(concurrency=1, queue=1)
        first = await gate.admit()
        waiting = asyncio.ensure_future(gate.admit())
        await asyncio.sleep(0)
        assert gate.waiting == 1
        with pytest.raises(GenerationBusy) as refused:
            await gate.admit()
        assert refused.value.code == "queue_full" and refused.value.retry_after >= 1
        first.close()
        second = await asyncio.wait_for(waiting, 5)  # the waiter gets the freed slot
        assert gate.held == 1 and gate.waiting == 0
        second.close()
        assert gate.held == 0
        (await gate.admit()).close()
        gate.close()

    asyncio.run(scenario())


def test_a_request_waits_at_most_the_wait_limit() -> None:
    async def scenario() -> None:
        gate = _gate(concurrency=1, queue=4, timeout=0.05)
        held = await gate.admit()
        with pytest.raises(GenerationBusy) as refused:
            await gate.admit()
        assert refused.value.code == "queue_timeout"
        assert gate.waiting == 0
        held.close()
        (await gate.admit()).close()  # the slot was not lost to the timed-out waiter
        gate.close()

    asyncio.run(scenario())


def test_a_cancelled_waiter_leaves_the_queue_and_a_granted_one_passes_its_slot_on() -> None:
    async def scenario() -> None:
        gate = _gate(concurrency=1, queue=2)
        held = await gate.admit()
        cancelled = asyncio.ensure_future(gate.admit())
        behind = asyncio.ensure_future(gate.admit())
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0)
        assert gate.waiting == 1
        held.close()
        (await asyncio.wait_for(behind, 5)).close()
        # Granted and cancelled in the same turn of the loop: the slot goes to the next one.
        held = await gate.admit()
        granted = asyncio.ensure_future(gate.admit())
        after = asyncio.ensure_future(gate.admit())
        await asyncio.sleep(0)
        held.close()  # grants `granted`...
        granted.cancel()  # ...which is cancelled before it runs
        (await asyncio.wait_for(after, 5)).close()
        assert gate.held == 0 and gate.waiting == 0
        gate.close()

    asyncio.run(scenario())


def test_a_freed_slot_goes_to_a_waiting_question_before_a_waiting_task() -> None:
    async def scenario() -> None:
        gate = _gate(concurrency=1, queue=4)
        held = await gate.admit()
        order: list[str] = []

        async def wait(name: str, priority: Priority) -> None:
            slot = await gate.admit(priority)
            order.append(name)
            slot.close()

        # The tasks queued first, the questions after them.
        waiting = [asyncio.ensure_future(wait("title", "task"))]
        await asyncio.sleep(0)
        waiting.append(asyncio.ensure_future(wait("tags", "task")))
        await asyncio.sleep(0)
        waiting.append(asyncio.ensure_future(wait("question 1", "user")))
        await asyncio.sleep(0)
        waiting.append(asyncio.ensure_future(wait("question 2", "user")))
        await asyncio.sleep(0)
        assert gate.waiting == 4 and order == []
        held.close()
        await asyncio.wait_for(asyncio.gather(*waiting), 5)
        assert order == ["question 1", "question 2", "title", "tags"]
        assert gate.held == 0 and gate.waiting == 0
        gate.close()

    asyncio.run(scenario())


def test_a_question_takes_the_place_of_the_last_task_when_the_queue_is_full() -> None:
    async def scenario() -> None:
        gate = _gate(concurrency=1, queue=2)
        held = await gate.admit()
        first_task = asyncio.ensure_future(gate.admit("task"))
        await asyncio.sleep(0)
        last_task = asyncio.ensure_future(gate.admit("task"))
        await asyncio.sleep(0)
        with pytest.raises(GenerationBusy):
            await gate.admit("task")  # a task finds the queue full: refused
        question = asyncio.ensure_future(gate.admit())
        await asyncio.sleep(0)
        with pytest.raises(GenerationBusy) as refused:
            await last_task
        assert refused.value.code == "queue_full" and gate.waiting == 2
        held.close()
        (await asyncio.wait_for(question, 5)).close()
        (await asyncio.wait_for(first_task, 5)).close()
        # With only questions waiting, a question past the bound is refused as before.
        held = await gate.admit()
        behind = [asyncio.ensure_future(gate.admit()) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(GenerationBusy):
            await gate.admit()
        held.close()
        for waiter in behind:
            (await asyncio.wait_for(waiter, 5)).close()
        assert gate.held == 0 and gate.waiting == 0
        gate.close()

    asyncio.run(scenario())


def test_a_slot_is_held_until_its_work_has_ended() -> None:
    async def scenario() -> None:
        gate = _gate(concurrency=1, queue=1)
        slot = await gate.admit()
        release = threading.Event()
        work = slot.run(lambda: release.wait(5))
        slot.close()  # the caller is done (it went away), the work is not
        await asyncio.sleep(0.05)
        assert gate.held == 1
        release.set()
        await work
        await asyncio.sleep(0)
        assert gate.held == 0
        gate.close()

    asyncio.run(scenario())


class SlowGenerator(ScriptedGenerator):
    """Writes one word every ``delay`` seconds; records whether its stream was closed."""

    def __init__(self, words: int = 200, delay: float = 0.02) -> None:
        super().__init__(["word " * words])
        self._delay = delay
        self.produced = 0
        self.closed = threading.Event()

    def stream(self, messages: Sequence[Message], *, max_new_tokens: int) -> Iterator[str]:
        try:
            for piece in super().stream(messages, max_new_tokens=max_new_tokens):
                time.sleep(self._delay)
                self.produced += 1
                yield piece
        finally:
            self.closed.set()


def test_a_cancelled_generation_stops_at_the_next_piece_and_closes_the_models_stream() -> None:
    model = SlowGenerator()
    cancel = threading.Event()
    pieces = CancellableGenerator(model, cancel).stream([], max_new_tokens=10)
    assert next(pieces) == "word "
    cancel.set()
    with pytest.raises(GenerationCancelled):
        next(pieces)
    assert model.closed.is_set() and model.produced == 2
    with pytest.raises(GenerationCancelled):
        next(CancellableGenerator(model, cancel).stream([], max_new_tokens=10))


@pytest.fixture
def busy_api(settings: Settings, embedder: HashEmbedder) -> Iterator[tuple[TestClient, Any]]:
    """The app over the fakes with one generation slot, no queue, and a slow model."""
    keyed = settings.model_copy(
        update={
            "api_keys": [SecretStr(API_KEY)],
            "generation_concurrency": 1,
            "generation_queue": 0,
        }
    )
    store = open_collection(keyed, embedder, create=True)
    try:
        _fill(store, embedder)
    finally:
        store.close()
    model = SlowGenerator(words=100, delay=0.03)
    app = create_app(keyed, embedder=embedder, generator=model)
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        yield client, model


def test_a_request_past_the_bound_gets_429_with_retry_after_and_the_rest_answers(
    busy_api: tuple[TestClient, Any],
) -> None:
    client, model = busy_api
    chat = {"model": "rag-default", "messages": [{"role": "user", "content": "descale?"}]}
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(client.post, "/v1/chat/completions", json=chat)
        deadline = time.monotonic() + 30
        while model.produced == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert model.produced > 0
        refused = [
            client.post("/v1/chat/completions", json=chat),
            client.post("/v1/chat/completions", json=chat | {"stream": True}),
            client.post("/v1/query", json={"question": "How often do I descale?"}),
        ]
        for response in refused:
            assert response.status_code == 429, response.text
            assert int(response.headers["Retry-After"]) >= 1
            error = response.json()["error"]
            assert error["type"] == "rate_limit_error" and error["code"] == "queue_full"
            assert set(error) == {"message", "type", "param", "code"}
        # Nothing a generation holds blocks the other routes.
        assert client.get("/healthz").status_code == 200
        assert client.post("/v1/search", json={"query": "descale"}).status_code == 200
        assert (
            client.post("/v1/embeddings", json={"model": "rag-default", "input": "x"}).status_code
            == 200
        )
        assert running.result(timeout=60).status_code == 200


def test_the_fake_app_still_answers_whole_and_streamed(fake_api: TestClient) -> None:
    chat = {"model": "rag-default", "messages": [{"role": "user", "content": "descale?"}]}
    whole = fake_api.post("/v1/chat/completions", json=chat)
    assert whole.status_code == 200 and COFFEE_REPLY.split()[0] in whole.text
    streamed = fake_api.post("/v1/chat/completions", json=chat | {"stream": True})
    assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")
    query = fake_api.post("/v1/query", json={"question": "How often do I descale?"})
    assert query.status_code == 200 and query.json()["answer"]


class _Listening:
    """A request whose client never goes away."""

    async def receive(self) -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {}


def test_a_generation_keeps_its_collection_open_while_others_need_room(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, max_open_collections=1)
    state = ServiceState(settings, HashEmbedder(), ScriptedGenerator())
    state.store("alpha", create=True)
    state.store("beta", create=True)
    opened, go = threading.Event(), threading.Event()

    def work(cancel: threading.Event) -> int:
        store = state.store("alpha")  # as an answerer does, on a generation thread
        opened.set()
        assert go.wait(10)
        return store.count()  # still usable: not closed to make room for "beta"

    async def other_request() -> None:
        await asyncio.to_thread(opened.wait, 10)
        with collections_in_use():
            await asyncio.to_thread(state.store, "beta")
        go.set()

    async def main() -> int:
        gate = GenerationGate(concurrency=1, queue=1, timeout=10)
        try:
            with collections_in_use():
                other = asyncio.ensure_future(other_request())
                counted = await gate.call(_Listening(), work)  # type: ignore[arg-type]
                await other
                return counted
        finally:
            gate.close()

    try:
        assert asyncio.run(main()) == 0
    finally:
        state.close()
