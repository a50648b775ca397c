"""A local chat model through transformers, from a GGUF file (converted once) or a folder.

The model is loaded on first use. With a batch size of 1 it serves one generation (or
judgement) at a time; both run in a short-lived thread of their own while the caller waits or
reads the stream. A generation holds the model only while it computes: the text it wrote waits
in the stream for a reader, and a reader that stops (closes the stream) ends the generation at
its next token.

With a larger batch size, generations are decoded together by a ``BatchedDecoder``: prompts
that arrive together are read in one pass, each stream gets its own tokens as they are
produced, a closed stream leaves the batch at the next step, and a judgement is read by the
decode loop between its steps, beside the answers in flight, instead of after every
generation. Both paths decode greedily, so a generation is the same whichever path or batch it
ran in (up to floating-point ties).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rag.errors import ModelError
from rag.generation import Message
from rag.generation.batching import BatchedDecoder
from rag.models import pick_device, pick_dtype, resolve_llm_source

log = logging.getLogger(__name__)

# A small model under greedy decoding falls into loops ("The answer is: The answer is: ...")
# and would spend its whole token budget there; it is stopped once it repeats this many
# tokens of its own answer.
REPEAT_NGRAM = 8
# Part of a converted folder's name: a change to what conversion writes converts anew.
_CONVERSION_FORMAT = 2
_MIN_REUSED_TOKENS = 16  # a shorter shared start is not worth keeping a cache for
# Query likelihood as a relevance judge (Sachan et al. 2022, "Improving Passage Retrieval with
# Zero-Shot Question Generation"): how well the model predicts the question after reading a
# passage. The passage is cut to this many tokens, room for a typical quoted window (a chunk
# with its neighbours) while the cost of a judgement stays bounded.
_JUDGE_PASSAGE_TOKENS = 480
_JUDGE_PROMPT = "Passage:\n{passage}\n\nWrite a question that this passage answers."


def repeats_itself(tokens: Sequence[int], n: int = REPEAT_NGRAM) -> bool:
    """Whether the last ``n`` tokens already occurred earlier in ``tokens``."""
    if len(tokens) < 2 * n:
        return False
    tail = list(tokens[-n:])
    return any(list(tokens[i : i + n]) == tail for i in range(len(tokens) - n))


def converted_dir(gguf: Path, cache_dir: Path) -> Path:
    """Cache folder named after the file and a fingerprint, so a new GGUF converts anew."""
    stat = gguf.stat()
    key = f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{_CONVERSION_FORMAT}"
    tag = hashlib.sha256(key.encode()).hexdigest()
    return cache_dir / f"{gguf.stem}-{tag[:12]}"


def convert_gguf(gguf: Path, target: Path) -> None:
    """De-quantize a GGUF into a transformers folder ``target``, once: later loads read the
    folder, which is much faster than parsing the GGUF again.

    save_pretrained refuses a model loaded from GGUF, so its weights are copied into a model
    built from the same config, which saves normally. ``target`` appears whole or not at all.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    log.info("converting %s for transformers (once; cached in %s)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = loaded.config
    # The weights are saved de-quantized: a GGUF quantization config saved with them would
    # make later loads treat the folder as packed GGUF weights.
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    # Renamed into place last: a crash mid-conversion leaves no half-written cache behind.
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    log.info("converted %s in %.1fs", gguf.name, time.perf_counter() - started)


class TransformersGenerator:
    """A chat model from a GGUF file, a package shipping one, or a transformers folder (the
    default is the SmolLM2 package). With ``max_batch_size`` 1, one generation or judgement
    at a time per loaded model, concurrent callers waiting for the lock; with more, up to
    ``max_batch_size`` generations decoded together (``BatchedDecoder``), reading at most
    ``max_batch_tokens`` prompt tokens per forward pass, in ``dtype`` (``pick_dtype``)."""

    def __init__(
        self,
        model: str,
        *,
        cache_dir: Path,
        device: str = "auto",
        max_batch_size: int = 1,
        max_batch_tokens: int = 1024,
        dtype: str = "auto",
    ) -> None:
        self._spec = model
        self._cache_dir = cache_dir
        self._device_setting = device
        self._max_batch_size = max_batch_size
        self._max_batch_tokens = max_batch_tokens
        self._dtype_setting = dtype
        self._decoder: BatchedDecoder | None = None
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._device = "cpu"
        # The previous prompt's tokens and key/value cache: the next prompt shares its start
        # (the system prompt at least), which is then not computed again.
        self._previous: tuple[list[int], Any] | None = None

    def _loaded(self) -> bool:
        return self._model is not None

    def warm_up(self) -> None:
        if self._loaded():  # no need to wait for a generation holding the lock
            return
        with self._lock:
            if self._loaded():
                return
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            source = resolve_llm_source(self._spec)
            folder = source
            if source.is_file():
                folder = converted_dir(source, self._cache_dir)
                if not (folder / "config.json").is_file():
                    self._cache_dir.mkdir(parents=True, exist_ok=True)
                    convert_gguf(source, folder)
            started = time.perf_counter()
            self._device = pick_device(self._device_setting)
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(
                    str(folder),
                    local_files_only=True,
                    dtype=pick_dtype(self._dtype_setting, self._device),
                )
            except (OSError, ValueError) as exc:
                raise ModelError(f"cannot load language model from {folder}: {exc}") from exc
            if tokenizer.chat_template is None:
                raise ModelError(f"language model at {folder} has no chat template")
            model = model.to(self._device).eval()  # type: ignore[arg-type]
            if self._max_batch_size > 1:
                self._decoder = BatchedDecoder(
                    model,
                    eos_token_id=int(tokenizer.eos_token_id),
                    max_batch_size=self._max_batch_size,
                    max_batch_tokens=self._max_batch_tokens,
                )
            self._tokenizer = tokenizer  # before the model: a loaded model means all are set
            self._model = model
            log.info(
                "language model %s loaded on %s in %.2fs",
                self._spec,
                self._device,
                time.perf_counter() - started,
            )

    def close(self) -> None:
        """Stop batched decoding (streams in flight fail); a lone generation needs nothing."""
        if self._decoder is not None:
            self._decoder.close()

    @property
    def model_name(self) -> str:
        return self._spec

    @property
    def context_window(self) -> int:
        self.warm_up()
        return int(getattr(self._model.config, "max_position_embeddings", 2048))

    def count_tokens(self, text: str) -> int:
        self.warm_up()
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def _encode(self, messages: Sequence[Message]) -> Any:
        encoded = self._tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        return encoded["input_ids"]

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        self.warm_up()
        return int(self._encode(messages).shape[1])

    def question_likelihoods(self, question: str, passages: Sequence[str]) -> list[float]:
        """``PassageJudge``: the mean log-probability of the question's tokens after each
        passage; no key/value cache is kept."""
        self.warm_up()
        asked = self._tokenizer(question, add_special_tokens=False)["input_ids"]
        if not asked:
            return [0.0] * len(passages)
        if self._decoder is not None:
            # Read by the decode loop between its steps, beside the answers in flight.
            texts = [(self._judge_prompt(passage) + asked, len(asked)) for passage in passages]
            return self._decoder.likelihoods(texts)
        scores: list[float] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                scores.extend(self._likelihood(passage, asked) for passage in passages)
            except BaseException as exc:  # surfaced in the caller's thread below
                errors.append(exc)

        # In a short-lived thread, as generation is: torch's OpenMP keeps a team of worker
        # threads for every thread that computes, and a long-lived caller's team stays to
        # compete with the next generation's for the cores, slowing every later decoding.
        with self._lock:
            worker = threading.Thread(target=run, name="judge", daemon=True)
            worker.start()
            worker.join()
        if errors:
            raise ModelError(f"judging passages failed: {errors[0]}") from errors[0]
        return scores

    def _judge_prompt(self, passage: str) -> list[int]:
        """The judge's prompt for ``passage`` (cut to its first tokens), up to the question."""
        kept = self._tokenizer(passage, add_special_tokens=False)["input_ids"]
        text = self._tokenizer.decode(kept[:_JUDGE_PASSAGE_TOKENS])
        asking = Message(role="user", content=_JUDGE_PROMPT.format(passage=text))
        return [int(t) for t in self._encode([asking])[0].tolist()]

    def _likelihood(self, passage: str, asked: list[int]) -> float:
        import torch

        head = self._judge_prompt(passage)
        with torch.inference_mode():
            ids = torch.tensor([head + asked], device=self._device)
            # Logits at position i predict token i + 1: only those before each question token
            # are computed (all of them would be a vocabulary-wide row per prompt token).
            output = self._model(input_ids=ids, use_cache=False, logits_to_keep=len(asked) + 1)
            logprobs = torch.log_softmax(output.logits[0, :-1].float(), dim=-1)
            targets = torch.tensor(asked, device=self._device)[:, None]
            return float(logprobs.gather(1, targets).mean())

    def _reusable_cache(self, ids: list[int]) -> Any:
        """The previous key/value cache cut to the prefix ``ids`` shares with it, or None.

        Called with the model lock held; the cache is handed over, not copied, because the
        generation that takes it replaces it.
        """
        previous, self._previous = self._previous, None
        if previous is None:
            return None
        old, cache = previous
        shared = 0
        for a, b in zip(old, ids, strict=False):
            if a != b:
                break
            shared += 1
        shared = min(shared, len(ids) - 1)  # the model must read at least one new token
        if shared < _MIN_REUSED_TOKENS:
            return None
        surplus = cache.get_seq_length() - shared
        if surplus > 0:
            cache.crop(-surplus)  # transformers 5: a negative count of tokens to drop
        return cache

    def stream(self, messages: Sequence[Message], *, max_new_tokens: int) -> Iterator[str]:
        self.warm_up()
        if self._decoder is not None:
            pieces = self._stream_batched(self._decoder, messages, max_new_tokens)
        else:
            pieces = self._stream_alone(messages, max_new_tokens)
        return self._timed(pieces, messages)

    def _timed(self, pieces: Iterator[str], messages: Sequence[Message]) -> Iterator[str]:
        """``pieces``, and a log line of the prompt's and the answer's tokens and times."""
        started = time.perf_counter()
        first: float | None = None
        text: list[str] = []
        try:
            for piece in pieces:
                if first is None:
                    first = time.perf_counter() - started
                text.append(piece)
                yield piece
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "generated %d tokens after a prompt of %d in %.2fs (first after %.2fs)",
                    self.count_tokens("".join(text)),
                    self.prompt_tokens(messages),
                    time.perf_counter() - started,
                    first or 0.0,
                )

    def _stream_batched(
        self, decoder: BatchedDecoder, messages: Sequence[Message], max_new_tokens: int
    ) -> Iterator[str]:
        """The text of the tokens ``decoder`` produces, piece by piece; closing it cancels
        the request. Stops, as a lone generation does, once the answer repeats itself."""
        prompt = self._encode(messages)[0].tolist()
        steps = decoder.tokens(prompt, max_new_tokens=max_new_tokens)
        generated: list[int] = []
        written = ""
        try:
            for new in steps:
                generated.extend(new)
                text = self._tokenizer.decode(generated, skip_special_tokens=True)
                # A character split over tokens waits for its last byte.
                if len(text) > len(written) and not text.endswith("\ufffd"):
                    piece, written = text[len(written) :], text
                    yield piece
                if repeats_itself(generated):
                    break
        finally:
            steps.close()  # a request still decoding leaves the batch at the next step
        text = self._tokenizer.decode(generated, skip_special_tokens=True)
        if len(text) > len(written):
            yield text[len(written) :]

    def _stream_alone(self, messages: Sequence[Message], max_new_tokens: int) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, TextIteratorStreamer

        input_ids = self._encode(messages).to(self._device)
        streamer = TextIteratorStreamer(
            self._tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300
        )
        errors: list[BaseException] = []
        cancelled = threading.Event()

        prompt_length = int(input_ids.shape[1])

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                done = cancelled.is_set()
                return torch.full((input_ids.shape[0],), done, device=input_ids.device)

        class Looping(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                done = [repeats_itself(row[prompt_length:].tolist()) for row in input_ids]
                return torch.tensor(done, device=input_ids.device)

        def run() -> None:
            try:
                self._generate(
                    input_ids, max_new_tokens, streamer, [Cancelled(), Looping()], errors
                )
            finally:
                self._lock.release()  # the model is free, however slowly the text is read

        # The model holds one generation at a time; concurrent requests queue here. The lock
        # is taken here and released by the generation thread as soon as the model is done.
        self._lock.acquire()
        worker = threading.Thread(target=run, name="generate", daemon=True)
        try:
            worker.start()
        except BaseException:
            self._lock.release()
            raise
        try:
            yield from (piece for piece in streamer if piece)
        finally:
            # The caller stopped reading (a stop sequence, a closed connection): end the
            # generation at the next token instead of running on.
            cancelled.set()
            worker.join()
        if errors:
            raise ModelError(f"generation failed: {errors[0]}") from errors[0]

    def _generate(
        self,
        input_ids: Any,
        max_new_tokens: int,
        streamer: Any,
        criteria: list[Any],
        errors: list[BaseException],
    ) -> None:
        """With the model lock held, on the generation thread: decode into ``streamer``
        and keep the key/value cache for the next prompt."""
        import torch
        from transformers import StoppingCriteriaList

        try:
            with torch.inference_mode():
                output = self._model.generate(
                    input_ids=input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    cache=self._reusable_cache(input_ids[0].tolist()),
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    streamer=streamer,
                    stopping_criteria=StoppingCriteriaList(criteria),
                    pad_token_id=self._tokenizer.eos_token_id,
                    return_dict_in_generate=True,
                )
            cache = output.cache
            if cache is not None:
                self._previous = (output.sequences[0].tolist()[: cache.get_seq_length()], cache)
        except BaseException as exc:  # surfaced in the reader's thread
            self._previous = None
            errors.append(exc)
            streamer.end()
