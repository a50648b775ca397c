"""Admission control for generation: a bounded queue in front of the model, and the threads
that generate, apart from the ones every other route uses.

Every request that generates (/v1/chat/completions, streamed or not, and /v1/query) takes a
slot first. At most ``RAG_GENERATION_CONCURRENCY`` hold one; up to ``RAG_GENERATION_QUEUE``
more wait for one, without holding a thread; past that bound, or after waiting
``RAG_GENERATION_QUEUE_TIMEOUT_SECONDS``, the request is refused at once with 429 and
``Retry-After``. A slot's work runs on the gate's own threads, never on the shared pool that
serves /healthz, search, embeddings and the job API, so nothing a generation holds or waits for
can block them.

Questions come first: a request is admitted as a ``user`` request (a question) or a ``task``
(a chat frontend's background task, such as a title). A freed slot goes to the longest-waiting
question, and to a task only when no question waits; when the queue is full, a question
arriving takes the place of the task that queued last, which is refused with 429.

A slot is freed when its work ends. A streamed answer is produced into a buffer that holds one
answer at most, so a slow reader holds neither a slot nor the model. A client that goes away
sets the request's cancellation event: the generation stops at its next token
(``CancellableGenerator``) and the slot is freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from rag.api.errors import error_response
from rag.api.state import collections_in_use
from rag.generation.cancel import GenerationCancelled

log = logging.getLogger(__name__)

T = TypeVar("T")
Priority = Literal["user", "task"]
"""``user``: a question someone waits for; ``task``: a frontend's background task."""

RATE_LIMIT = "rate_limit_error"
_MAX_RETRY_AFTER = 60
_END = object()


class GenerationBusy(Exception):
    """No slot now: 429 with ``Retry-After``."""

    def __init__(self, message: str, *, retry_after: int, code: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.code = code


class Slot:
    """The right to generate, held from admission until the last of its work has ended and
    ``close`` was called. Used only on the event loop's thread."""

    def __init__(self, gate: GenerationGate) -> None:
        self._gate = gate
        self._running = 0
        self._closed = False
        self._freed = False
        self._taken = time.monotonic()
        self.cancel = threading.Event()
        """Set when the client went away (or the service stops): the work ends soon after."""

    def run(self, work: Callable[[], T]) -> asyncio.Future[T]:
        """Start ``work`` on the gate's threads; the slot stays held until it has ended, even
        if the caller stops waiting for it."""

        def pinned() -> T:
            # The thread gets none of the request's context: the collections the work opens
            # are pinned here, for as long as the work runs, so none is closed under it.
            with collections_in_use():
                return work()

        future = asyncio.get_running_loop().run_in_executor(self._gate.executor, pinned)
        self._running += 1
        future.add_done_callback(self._ended)
        return future

    def _ended(self, _: object) -> None:
        self._running -= 1
        self._free_if_done()

    def close(self) -> None:
        self._closed = True
        self._free_if_done()

    def _free_if_done(self) -> None:
        if self._closed and self._running == 0 and not self._freed:
            self._freed = True
            self._gate.release(self, time.monotonic() - self._taken)


class GenerationGate:
    """At most ``concurrency`` slots held at once, at most ``queue`` requests waiting for one,
    each for at most ``timeout`` seconds."""

    def __init__(self, *, concurrency: int, queue: int, timeout: float) -> None:
        self._free = concurrency
        self._concurrency = concurrency
        self._max_waiting = queue
        self._timeout = timeout
        self._waiters: dict[Priority, deque[asyncio.Future[None]]] = {
            "user": deque(),
            "task": deque(),
        }
        self._held: set[Slot] = set()
        self._typical_seconds = 5.0  # a moving average of how long a slot is held
        self.executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="generate")

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._waiters.values())

    @property
    def held(self) -> int:
        return len(self._held)

    def retry_after(self) -> int:
        """Seconds until a slot is likely free for one more request."""
        rounds = (self.waiting + 1) / self._concurrency
        estimate = math.ceil(self._typical_seconds * rounds)
        return max(1, min(_MAX_RETRY_AFTER, estimate))

    async def admit(self, priority: Priority = "user") -> Slot:
        """A slot, now or after waiting in the queue behind the requests of the same or a
        higher priority; GenerationBusy when the queue is full, the wait is over, or a question
        took this task's place."""
        if self._free > 0 and not self.waiting:
            self._free -= 1
            return self._hold()
        # A question never waits for want of room while a task waits: the task queued last
        # gives way.
        if self.waiting >= self._max_waiting and not (priority == "user" and self._bump_task()):
            raise self._full()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiters[priority]
        queue.append(waiter)
        try:
            async with asyncio.timeout(self._timeout):
                await waiter
        except GenerationBusy:
            raise  # a question took its place; it is off the queue already
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._hand_on()  # given a slot just as the wait ended: pass it on
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):  # already taken off by close()
                    queue.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise GenerationBusy(
                    f"no generation slot was free within {self._timeout:g} s; retry later",
                    retry_after=self.retry_after(),
                    code="queue_timeout",
                ) from None
            raise
        return self._hold()

    def _bump_task(self) -> bool:
        """Refuse the task that queued last (429); False when no task waits."""
        tasks = self._waiters["task"]
        while tasks:
            waiter = tasks.pop()
            if not waiter.done():  # a cancelled one is leaving anyway
                waiter.set_exception(self._full())
                return True
        return False

    def _full(self) -> GenerationBusy:
        return GenerationBusy(
            "too many generation requests are waiting; retry later",
            retry_after=self.retry_after(),
            code="queue_full",
        )

    def _hold(self) -> Slot:
        slot = Slot(self)
        self._held.add(slot)
        return slot

    def release(self, slot: Slot, seconds: float) -> None:
        self._held.discard(slot)
        self._typical_seconds = 0.8 * self._typical_seconds + 0.2 * seconds
        self._hand_on()

    def _hand_on(self) -> None:
        """Give a freed slot to the longest-waiting question, else task, else keep it."""
        for queue in self._waiters.values():  # questions first
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._free += 1

    async def call(
        self,
        request: Request,
        work: Callable[[threading.Event], T],
        *,
        priority: Priority = "user",
    ) -> T:
        """Admit, then run ``work(cancel)`` on a generation thread; a client that disconnects
        meanwhile sets ``cancel``, and GenerationCancelled comes back from the work."""
        slot = await self.admit(priority)
        try:
            future = slot.run(lambda: work(slot.cancel))
            watcher = asyncio.ensure_future(_disconnected(request))
            try:
                pending: list[asyncio.Future[Any]] = [future, watcher]
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                gone = watcher.done() and not watcher.cancelled() and not watcher.exception()
                if gone and not future.done():
                    _stop(slot, "client disconnected")
                return await future
            finally:
                watcher.cancel()
        except asyncio.CancelledError:
            slot.cancel.set()
            raise
        finally:
            slot.close()

    async def stream(
        self,
        prepare: Callable[[threading.Event], Iterator[str]],
        *,
        media_type: str,
        headers: Mapping[str, str],
    ) -> StreamingResponse:
        """Admit, run ``prepare(cancel)`` (where a request is refused, before any byte is
        sent), then a response that streams what it returns, produced on the slot's thread."""
        slot = await self.admit()
        try:
            events = await slot.run(lambda: prepare(slot.cancel))
        except BaseException:
            slot.cancel.set()
            slot.close()
            raise
        return GenerationStream(slot, events, media_type=media_type, headers=headers)

    def close(self) -> None:
        """Stop every generation in flight (the service is stopping)."""
        for slot in list(self._held):
            slot.cancel.set()
        for queue in self._waiters.values():
            for waiter in queue:
                waiter.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)


class GenerationStream(StreamingResponse):
    """Streams ``events`` as they are produced on a generation thread into a buffer.

    The buffer holds at most one answer, so the thread (and the model) never waits for the
    reader. When the response ends for any reason (done, the client disconnected, the task was
    cancelled) the production is cancelled and the slot freed.
    """

    def __init__(
        self, slot: Slot, events: Iterator[str], *, media_type: str, headers: Mapping[str, str]
    ) -> None:
        self._slot = slot
        self._events = events
        self._buffer: asyncio.Queue[Any] = asyncio.Queue()
        self._read_whole = False
        super().__init__(self._read(), media_type=media_type, headers=headers)

    async def _read(self) -> AsyncIterator[str]:
        while (item := await self._buffer.get()) is not _END:
            yield item
        self._read_whole = True

    def _produce(self, loop: asyncio.AbstractEventLoop) -> None:
        def put(item: object) -> None:
            try:
                loop.call_soon_threadsafe(self._buffer.put_nowait, item)
            except RuntimeError:  # the loop is closed: the service stopped
                self._slot.cancel.set()

        try:
            for event in self._events:
                if self._slot.cancel.is_set():
                    break
                put(event)
        except GenerationCancelled:
            pass
        finally:
            try:
                close = getattr(self._events, "close", None)
                if close is not None:
                    close()  # a generation still running stops at its next token
            finally:
                put(_END)  # the reader always learns the stream has ended

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        producing: asyncio.Future[None] | None = None
        try:
            producing = self._slot.run(lambda: self._produce(loop))
            await super().__call__(scope, receive, send)
        finally:
            if producing is not None and not (self._read_whole or producing.done()):
                _stop(self._slot, "client disconnected")
            self._slot.close()


def _stop(slot: Slot, why: str) -> None:
    slot.cancel.set()
    log.info("%s: generation stopped", why)


async def _disconnected(request: Request) -> None:
    """Return once the client has gone away (the body has been read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def add_admission_handlers(app: FastAPI) -> None:
    """Answer GenerationBusy (429 with Retry-After) and GenerationCancelled."""

    @app.exception_handler(GenerationBusy)
    async def busy(_: Request, exc: GenerationBusy) -> JSONResponse:
        response = error_response(429, str(exc), RATE_LIMIT, code=exc.code)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(GenerationCancelled)
    async def cancelled(_: Request, exc: GenerationCancelled) -> JSONResponse:
        # Nobody reads it: the client has gone (or the service is stopping).
        return error_response(503, str(exc), "service_unavailable", code="cancelled")
