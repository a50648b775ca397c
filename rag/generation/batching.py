"""Continuous batching for the local model: the requests of many threads decoded together.

One background thread (transformers' ``ContinuousBatchingManager``) owns the decode loop. Each
step it admits waiting prompts (a long prompt is read in chunks of at most ``max_batch_tokens``
tokens, between the decode steps of the others), then computes the next token of every active
sequence in one forward pass over a paged key/value cache. A request joins between steps and
leaves as soon as it ends: at its end-of-text token, at its token budget, or when its reader
closes the stream (cancelled at the next step, its cache freed).

A router thread hands each step's output to the stream of the request it belongs to. Decoding
is greedy, so a request's tokens do not depend on the others in the batch (up to ties in
floating-point arithmetic).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import queue
import threading
import weakref
from collections.abc import Generator, Iterator
from typing import Any

from rag.errors import ModelError

log = logging.getLogger(__name__)

# Room in the paged key/value cache for this many tokens per sequence of a full batch: a prompt
# with retrieved context and its answer. Longer sequences still run; the library then frees a
# waiting request's cache and reads its prompt again later.
_CACHE_TOKENS_PER_SEQUENCE = 1024
_PAGE_TOKENS = 128
_POLL_SECONDS = 0.5  # how often a waiting reader checks that the decode loop still runs
_DONE = object()


class BatchedDecoder:
    """Decodes the prompts submitted from any thread together, at most ``max_batch_size``
    sequences per step and at most ``max_batch_tokens`` tokens per forward pass."""

    def __init__(
        self,
        model: Any,
        *,
        eos_token_id: int,
        max_batch_size: int,
        max_batch_tokens: int,
    ) -> None:
        from transformers import ContinuousBatchingConfig, GenerationConfig

        cache_tokens = max_batch_size * _CACHE_TOKENS_PER_SEQUENCE
        config = ContinuousBatchingConfig(
            page_size=_PAGE_TOKENS,
            # Sized here: left to itself, the library sizes the cache after the free memory,
            # which on a CPU is most of the machine's RAM.
            num_blocks=math.ceil(cache_tokens / _PAGE_TOKENS),
            max_batch_tokens=max(max_batch_tokens, max_batch_size),
            max_requests_per_batch=max_batch_size,
            auto_switch_to_flash=False,
        )
        generation = GenerationConfig(  # type: ignore[no-untyped-call]
            do_sample=False, eos_token_id=eos_token_id
        )
        self._manager = model.init_continuous_batching(
            generation_config=generation, continuous_batching_config=config
        )
        self._streams: dict[str, queue.SimpleQueue[Any]] = {}
        self._streams_lock = threading.Lock()
        self._ids = itertools.count()
        self._stopping = threading.Event()
        self._manager.start()
        self._router = threading.Thread(target=self._route, name="decode-router", daemon=True)
        self._router.start()
        # The library's decode thread is not a daemon: left running, it would keep the process
        # from exiting. It is stopped at exit, if nobody closed it before, in the hook that
        # runs before the interpreter waits for such threads (the one concurrent.futures
        # uses): a daemon thread stopping it later would race the interpreter's teardown.
        threading._register_atexit(_close_at_exit, weakref.ref(self))  # type: ignore[attr-defined]

    def tokens(self, prompt: list[int], *, max_new_tokens: int) -> Generator[list[int], None, None]:
        """The tokens generated after ``prompt``, a list per decode step, until the end-of-text
        token (included) or ``max_new_tokens``. Closing the iterator cancels the request."""
        if self._stopping.is_set():
            raise ModelError("the local model has stopped")
        request_id = f"r{next(self._ids)}"
        stream: queue.SimpleQueue[Any] = queue.SimpleQueue()
        with self._streams_lock:
            self._streams[request_id] = stream
        finished = False
        try:
            self._manager.add_request(
                input_ids=prompt,
                request_id=request_id,
                max_new_tokens=max_new_tokens,
                streaming=True,
            )
            sent = 0
            while True:
                output = self._next(stream)
                if output is _DONE:
                    raise ModelError("the local model stopped before the answer ended")
                if output.error:
                    raise ModelError(f"generation failed: {output.error}")
                generated = output.generated_tokens
                if len(generated) > sent:
                    new, sent = list(generated[sent:]), len(generated)
                    finished = output.is_finished()
                    yield new
                if output.is_finished():
                    finished = True
                    return
        finally:
            with self._streams_lock:
                self._streams.pop(request_id, None)
            if not finished:
                self._manager.cancel_request(request_id)

    def _next(self, stream: queue.SimpleQueue[Any]) -> Any:
        while True:
            try:
                return stream.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if not self._manager.is_running():
                    return _DONE

    def _route(self) -> None:
        """Hand every output to its request's stream; those of closed streams are dropped."""
        while not self._stopping.is_set():
            output = self._manager.get_result(timeout=_POLL_SECONDS)
            if output is None:
                if not self._manager.is_running():
                    self._stopping.wait(_POLL_SECONDS)
                continue
            with self._streams_lock:
                stream = self._streams.get(output.request_id)
            if stream is not None:
                stream.put(output)
        with self._streams_lock:
            for stream in self._streams.values():
                stream.put(_DONE)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the decode loop between two steps while the caller uses the model; every
        request in flight keeps its place and its cache."""
        if not self._manager.is_running():
            raise ModelError("the local model has stopped")
        with self._manager.pause():
            yield

    def close(self) -> None:
        """Stop the decode loop; requests in flight fail."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        with contextlib.suppress(RuntimeError):
            self._manager.stop(block=True, timeout=30, hard_stop=True)
        self._router.join(timeout=5)
        log.info("batched decoding stopped")


def _close_at_exit(decoder: weakref.ref[BatchedDecoder]) -> None:
    """Weakly held, so that a closed decoder (and its model) can be freed before exit."""
    alive = decoder()
    if alive is not None:
        alive.close()
