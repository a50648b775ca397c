"""Batched decoding for the local model: the requests of many threads decoded together.

One background thread owns the model and runs a loop of steps. Each step:

1. drops the requests whose readers closed their streams (their rows leave the batch);
2. admits waiting requests while fewer than ``max_batch_size`` are in flight;
3. reads prompts: new prompts that fit in ``max_batch_tokens`` tokens together are read in one
   left-padded forward pass; a longer one is read in parts of that size, one part per step,
   so that the answers in flight keep streaming. A prompt that starts like the previous one
   (the system prompt) reuses that start's keys and values instead of computing them again.
   A request whose prompt is read gets its first token at once and joins the batch;
4. decodes one token of every sequence in the batch in one forward pass over a shared,
   left-padded key/value cache.

Between those, a step reads the pending scoring requests (``likelihoods``, the passage
judge's question likelihoods): as many waiting texts as one short left-padded pass reads
whole, or else one part of a longer text, so that a judgement slows the answers in flight for
a few steps instead of stopping them until it ends.

A request leaves at its end-of-text token, at its token budget, or when its reader closes the
stream. Decoding is greedy, so a request's tokens do not depend on the others in the batch (up
to ties in floating-point arithmetic).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import threading
import weakref
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from rag.errors import ModelError

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.5  # how often a waiting reader checks that the decode loop still runs
_MIN_SHARED_PREFIX = 16  # a shorter common start is not worth copying a cache for
_END = object()
# A scoring request is read in parts of this many tokens, one part per step: each step's
# decode waits for one part, not for the whole judgement.
_SCORE_PART_TOKENS = 256
# Judged texts that wait together are read in one pass of at most this many tokens: a pass
# holds up the answers in flight and the prompts that arrive meanwhile, so it stays short,
# like a part, rather than as long as a pass of prompts may be.
_SCORE_PASS_TOKENS = 2 * _SCORE_PART_TOKENS


@dataclass(eq=False)
class _Request:
    prompt: list[int]
    budget: int
    out: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)
    cancelled: bool = False  # set by the reader's thread, read by the loop between steps
    generated: int = 0
    last: int = 0  # the latest token, the next decode step's input
    read: int = 0  # prompt tokens in ``cache``
    cache: Any = None  # the request's own key/value cache while its prompt is read


@dataclass(eq=False)
class _Score:
    ids: list[int]
    targets: int  # the last ``targets`` tokens of ``ids`` are scored
    out: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)
    read: int = 0
    cache: Any = None
    alone: bool = False  # read by itself, in parts: it failed in a group


class BatchedDecoder:
    """Decodes the prompts submitted from any thread together, at most ``max_batch_size``
    sequences per step and at most ``max_batch_tokens`` prompt tokens per forward pass."""

    def __init__(
        self,
        model: Any,
        *,
        eos_token_id: int,
        max_batch_size: int,
        max_batch_tokens: int,
    ) -> None:
        self._model = model
        self._eos = eos_token_id
        self._max_batch_size = max_batch_size
        self._max_batch_tokens = max_batch_tokens
        self._waiting: collections.deque[_Request] = collections.deque()
        self._reading: list[_Request] = []  # admitted, prompt not read to its end yet
        self._batch: list[_Request] = []  # decoding; row i of the cache is _batch[i]
        self._scoring: collections.deque[_Score] = collections.deque()
        self._cache: Any = None
        self._mask: Any = None  # [rows, columns]: 1 for a token, 0 for padding
        self._prefix: tuple[list[int], list[tuple[Any, Any]]] | None = None
        self._wake = threading.Condition()
        self._step_lock = threading.Lock()  # held for a step; a pause holds it between steps
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decode-loop", daemon=True)
        self._thread.start()
        # Stopped at exit, if nobody closed it before, so that no step is half done while the
        # interpreter tears down (the hook runs before it waits for non-daemon threads).
        threading._register_atexit(_close_at_exit, weakref.ref(self))  # type: ignore[attr-defined]

    def tokens(self, prompt: list[int], *, max_new_tokens: int) -> Generator[list[int], None, None]:
        """The tokens generated after ``prompt``, a list per decode step, until the end-of-text
        token (included) or ``max_new_tokens``. Closing the iterator cancels the request."""
        if not prompt:
            raise ModelError("an empty prompt cannot be decoded")
        request = _Request(list(prompt), max(1, max_new_tokens))
        with self._wake:
            if self._stopping.is_set():
                raise ModelError("the local model has stopped")
            self._waiting.append(request)
            self._wake.notify()
        finished = False
        try:
            while True:
                item = self._next(request.out)
                if item is _END:
                    finished = True
                    return
                if isinstance(item, BaseException):
                    finished = True
                    raise ModelError(f"generation failed: {item}") from item
                yield item
        finally:
            if not finished:
                request.cancelled = True  # the loop drops it before its next step
                with self._wake:
                    self._wake.notify()

    def likelihoods(self, texts: list[tuple[list[int], int]]) -> list[float]:
        """For each ``(ids, targets)``, the mean log-probability of the last ``targets`` tokens
        of ``ids`` after the ones before them. Computed by the decode loop between the decode
        steps of the answers in flight: texts waiting together in one short pass, a longer
        one a part per step."""
        scores = [_Score(list(ids), targets) for ids, targets in texts]
        for score in scores:
            if not 0 < score.targets < len(score.ids):
                raise ModelError("a scored text needs tokens before and after its start")
        with self._wake:
            if self._stopping.is_set():
                raise ModelError("the local model has stopped")
            self._scoring.extend(scores)
            self._wake.notify()
        results: list[float] = []
        for score in scores:
            item = self._next(score.out)
            if isinstance(item, BaseException):
                raise ModelError(f"scoring failed: {item}") from item
            results.append(float(item))
        return results

    def _next(self, out: queue.SimpleQueue[Any]) -> Any:
        while True:
            try:
                return out.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if not self._thread.is_alive():
                    return ModelError("the local model stopped before the answer ended")

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the decode loop between two steps while the caller uses the model; every
        request in flight keeps its place and its cache."""
        if not self._thread.is_alive():
            raise ModelError("the local model has stopped")
        with self._step_lock:
            yield

    def close(self) -> None:
        """Stop the decode loop; requests in flight fail."""
        with self._wake:
            if self._stopping.is_set():
                return
            self._stopping.set()
            self._wake.notify()
        self._thread.join(timeout=30)
        log.info("batched decoding stopped")

    # --- the loop -----------------------------------------------------------------------

    def _run(self) -> None:
        import torch

        try:
            with torch.inference_mode():
                while self._wait_for_work():
                    with self._step_lock:
                        try:
                            self._step()
                        except Exception as exc:  # the requests in flight fail; others go on
                            log.exception("a batched decoding step failed")
                            self._fail_in_flight(exc)
        finally:
            self._stopping.set()
            self._fail_in_flight(ModelError("the local model has stopped"))
            with self._wake:
                waiting: list[_Request | _Score] = [*self._waiting, *self._scoring]
                self._waiting.clear()
                self._scoring.clear()
            for request in waiting:
                request.out.put(ModelError("the local model has stopped"))

    def _wait_for_work(self) -> bool:
        with self._wake:
            while not (self._waiting or self._reading or self._batch or self._scoring):
                if self._stopping.is_set():
                    return False
                self._wake.wait()
            return not self._stopping.is_set()

    def _fail_in_flight(self, error: BaseException) -> None:
        requests = [*self._reading, *self._batch]
        self._reading, self._batch = [], []
        self._cache = self._mask = None
        for request in requests:
            request.out.put(error)

    def _step(self) -> None:
        self._drop_cancelled()
        with self._wake:
            while self._waiting and len(self._reading) + len(self._batch) < self._max_batch_size:
                request = self._waiting.popleft()
                if not request.cancelled:
                    self._reading.append(request)
        if self._reading:
            self._read_prompts()
        if self._scoring:
            group = self._score_group()
            if len(group) > 1:
                try:
                    self._score_together(group)
                except Exception:  # each is scored again alone, so that only a bad one fails
                    log.warning(
                        "scoring texts together failed; scoring them one by one", exc_info=True
                    )
                    for score in group:
                        score.alone = True
            else:
                score = self._scoring[0]
                try:
                    self._score_part(score)
                except Exception as exc:  # that text fails; the answers in flight go on
                    log.exception("scoring a text failed")
                    with self._wake:
                        self._scoring.remove(score)
                    score.cache = None
                    score.out.put(exc)
        if self._batch:
            self._decode()

    def _drop_cancelled(self) -> None:
        self._reading = [r for r in self._reading if not r.cancelled]
        if any(r.cancelled for r in self._batch):
            self._keep_rows([i for i, r in enumerate(self._batch) if not r.cancelled])

    def _read_prompts(self) -> None:
        """Read the new prompts that fit in one pass together, or the next part of a long one."""
        partial = next((r for r in self._reading if r.cache is not None), None)
        if partial is not None:
            self._read_part(partial)
            return
        budget = self._max_batch_tokens
        group: list[_Request] = []
        shared = 0
        for request in self._reading:
            common = min(shared, self._shared(request)) if group else self._shared(request)
            widest = max(len(r.prompt) for r in [*group, request]) - common
            if group and widest * (len(group) + 1) > budget:
                break
            if not group and widest > budget:  # too long for one pass: read in parts
                request.cache, request.read = self._prefix_cache(common, rows=1), common
                self._read_part(request)
                return
            group.append(request)
            shared = common
        self._read_group(group, shared)

    def _shared(self, request: _Request) -> int:
        """How many of the remembered prompt's first tokens ``request``'s prompt starts with
        (0 when too few to be worth reusing); at least one token is left to read."""
        if self._prefix is None:
            return 0
        shared = 0
        for a, b in zip(self._prefix[0], request.prompt, strict=False):
            if a != b:
                break
            shared += 1
        shared = min(shared, len(request.prompt) - 1)
        return shared if shared >= _MIN_SHARED_PREFIX else 0

    def _prefix_cache(self, length: int, *, rows: int) -> Any:
        """A cache of ``rows`` rows holding the remembered prompt's first ``length`` tokens."""
        from transformers import DynamicCache

        if not length or self._prefix is None:
            return DynamicCache()
        return DynamicCache(
            ddp_cache_data=[
                (k[:, :, :length].repeat(rows, 1, 1, 1), v[:, :, :length].repeat(rows, 1, 1, 1))
                for k, v in self._prefix[1]
            ]
        )

    def _read_part(self, request: _Request) -> None:
        """The next part of a long prompt, alone; once it is all read, the request joins."""
        import torch

        part = request.prompt[request.read : request.read + self._max_batch_tokens]
        device = self._model.device
        mask = torch.ones((1, request.read + len(part)), dtype=torch.long, device=device)
        logits = self._forward(torch.tensor([part], device=device), mask, request.cache)
        request.read += len(part)
        if request.read < len(request.prompt):
            return
        cache, request.cache = request.cache, None
        self._reading.remove(request)
        self._finish_reading([request], logits, cache, mask)

    def _read_group(self, group: list[_Request], shared: int) -> None:
        """The group's prompts after their ``shared`` start, left-padded, in one pass."""
        ids, mask = self._left_padded([r.prompt[shared:] for r in group], shared=shared)
        cache = self._prefix_cache(shared, rows=len(group))
        logits = self._forward(ids, mask, cache)
        for request in group:
            self._reading.remove(request)
        self._finish_reading(group, logits, cache, mask)

    def _score_group(self) -> list[_Score]:
        """The waiting texts, first first, that one left-padded pass reads whole within
        ``_SCORE_PASS_TOKENS`` (and ``max_batch_tokens``); a text begun in parts goes on
        alone."""
        with self._wake:
            waiting = list(self._scoring)
        group: list[_Score] = []
        for score in waiting:
            if score.cache is not None or score.alone:
                break
            widest = max(len(s.ids) for s in [*group, score])
            if widest * (len(group) + 1) > min(_SCORE_PASS_TOKENS, self._max_batch_tokens):
                break
            group.append(score)
        return group

    def _score_together(self, group: list[_Score]) -> None:
        """Every text of ``group`` read in one left-padded pass, without a cache."""
        ids, mask = self._left_padded([s.ids for s in group])
        kept = max(s.targets for s in group) + 1  # the logits that predict the scored tokens
        logits = self._logits(ids, mask, None, keep=kept)
        results = [
            _mean_logprob(logits[row, kept - score.targets - 1 : -1], score, ids.device)
            for row, score in enumerate(group)
        ]
        with self._wake:
            for score in group:
                self._scoring.remove(score)
        for score, result in zip(group, results, strict=True):
            score.out.put(result)

    def _score_part(self, score: _Score) -> None:
        """The next part of a scored text; the last part (every scored token and the one
        before them) gives the score."""
        import torch
        from transformers import DynamicCache

        if score.cache is None:
            score.cache = DynamicCache()
        scored_from = len(score.ids) - score.targets - 1  # its logits predict the first target
        end = min(score.read + _SCORE_PART_TOKENS, scored_from)
        if end <= score.read or len(score.ids) - score.read <= _SCORE_PART_TOKENS:
            end = len(score.ids)
        part = score.ids[score.read : end]
        device = self._model.device
        output = self._model(
            input_ids=torch.tensor([part], device=device),
            position_ids=torch.arange(score.read, end, device=device)[None],
            cache=score.cache,
            use_cache=True,
            logits_to_keep=score.targets + 1 if end == len(score.ids) else 1,
        )
        score.read = end
        if end < len(score.ids):
            return
        result = _mean_logprob(output.logits[0, :-1], score, device)
        score.cache = None
        with self._wake:
            self._scoring.popleft()
        score.out.put(result)

    def _left_padded(self, parts: list[list[int]], *, shared: int = 0) -> tuple[Any, Any]:
        """``parts`` as rows of token ids padded on the left, and their mask, which also
        covers ``shared`` columns of a cache before them (1 for a token, 0 for padding)."""
        import torch

        device = self._model.device
        width = max(len(p) for p in parts)
        mask = torch.zeros((len(parts), shared + width), dtype=torch.long, device=device)
        mask[:, :shared] = 1
        ids = torch.full((len(parts), width), self._eos, dtype=torch.long, device=device)
        for row, part in enumerate(parts):
            mask[row, shared + width - len(part) :] = 1
            ids[row, width - len(part) :] = torch.tensor(part, device=device)
        return ids, mask

    def _forward(self, ids: Any, mask: Any, cache: Any) -> Any:
        """The logits of each row's last token, after the model reads ``ids`` on top of
        ``cache`` (extended in place); ``mask`` covers the cache's columns and ``ids``."""
        return self._logits(ids, mask, cache, keep=1)[:, -1]

    def _logits(self, ids: Any, mask: Any, cache: Any, *, keep: int) -> Any:
        """The logits of each row's last ``keep`` tokens, as ``_forward`` reads them; without
        a ``cache`` (None), nothing is kept."""
        # A token's position counts the tokens before it in its own sequence, pads excluded.
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)[:, -ids.shape[1] :]
        output = self._model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=cache is not None,
            logits_to_keep=keep,
        )
        return output.logits

    def _finish_reading(self, group: list[_Request], logits: Any, cache: Any, mask: Any) -> None:
        """The group's first tokens; those that go on join the batch."""
        self._remember_prefix(group[0], cache, mask, row=0)
        firsts = logits.argmax(dim=-1).tolist()
        going = [i for i, request in enumerate(group) if self._emit(request, firsts[i])]
        if going:
            self._join([group[i] for i in going], cache, mask, going)

    def _remember_prefix(self, request: _Request, cache: Any, mask: Any, row: int) -> None:
        """Keep ``request``'s prompt and its keys and values: the next prompt may start alike."""
        columns = mask[row].bool()
        self._prefix = (
            request.prompt,
            [
                (layer.keys[row : row + 1, :, columns], layer.values[row : row + 1, :, columns])
                for layer in cache.layers
            ],
        )

    def _emit(self, request: _Request, token: int) -> bool:
        """Hand ``token`` to its request; False when the request has ended with it."""
        request.generated += 1
        request.last = token
        request.out.put([token])
        if token == self._eos or request.generated >= request.budget:
            request.out.put(_END)
            return False
        return True

    def _join(self, requests: list[_Request], cache: Any, mask: Any, rows: list[int]) -> None:
        """Add ``rows`` of a freshly read group (its ``cache`` and ``mask``) to the batch."""
        import torch

        index = torch.tensor(rows, device=mask.device)
        if len(rows) != mask.shape[0]:
            for layer in cache.layers:
                layer.batch_select_indices(index)
            mask = mask[index]
        if not self._batch:
            self._cache, self._mask, self._batch = cache, mask, list(requests)
            return
        width = max(self._mask.shape[1], mask.shape[1])
        for mine, theirs in zip(self._cache.layers, cache.layers, strict=True):
            mine.keys = _left_pad_cat([mine.keys, theirs.keys], width)
            mine.values = _left_pad_cat([mine.values, theirs.values], width)
        self._mask = _left_pad_cat([self._mask, mask], width)
        self._batch.extend(requests)

    def _decode(self) -> None:
        """One token for every sequence of the batch."""
        import torch

        mask = self._mask
        ids = torch.tensor([[r.last] for r in self._batch], device=mask.device)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        logits = self._forward(ids, mask, self._cache)
        self._mask = mask
        tokens = logits.argmax(dim=-1).tolist()
        going = [i for i, r in enumerate(self._batch) if self._emit(r, tokens[i])]
        if len(going) < len(self._batch):
            self._keep_rows(going)

    def _keep_rows(self, rows: list[int]) -> None:
        """Only ``rows`` stay in the batch; columns that are padding in every row go."""
        import torch

        if not rows:
            self._batch, self._cache, self._mask = [], None, None
            return
        index = torch.tensor(rows, device=self._mask.device)
        mask = self._mask[index]
        start = int(mask.any(dim=0).long().argmax())  # the first column that holds a token
        for layer in self._cache.layers:
            layer.keys = layer.keys[index, :, start:]
            layer.values = layer.values[index, :, start:]
        self._mask = mask[:, start:]
        self._batch = [self._batch[i] for i in rows]


def _mean_logprob(logits: Any, score: _Score, device: Any) -> float:
    """The mean log-probability of ``score``'s scored tokens, given the logits that predict
    them (one row per scored token)."""
    import torch

    logprobs = torch.log_softmax(logits.float(), dim=-1)
    targets = torch.tensor(score.ids[-score.targets :], device=device)[:, None]
    return float(logprobs.gather(1, targets).mean())


def _left_pad_cat(tensors: list[Any], width: int) -> Any:
    """``tensors`` stacked along their first dimension, each padded with zeros on the left of
    its last-but-one (keys and values) or last (masks) dimension to ``width``."""
    import torch

    padded = []
    for tensor in tensors:
        axis = tensor.dim() - 2 if tensor.dim() == 4 else tensor.dim() - 1
        missing = width - tensor.shape[axis]
        if missing:
            shape = list(tensor.shape)
            shape[axis] = missing
            tensor = torch.cat([tensor.new_zeros(shape), tensor], dim=axis)
        padded.append(tensor)
    return torch.cat(padded, dim=0)


def _close_at_exit(decoder: weakref.ref[BatchedDecoder]) -> None:
    """Weakly held, so that a closed decoder (and its model) can be freed before exit."""
    alive = decoder()
    if alive is not None:
        alive.close()
