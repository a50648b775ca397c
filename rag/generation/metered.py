"""Measuring generations: time to the first token, tokens written and their pace, reported to
an observer the caller supplies (the service's metrics), so this package knows nothing of how
they are kept."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Protocol

from rag.generation import Generator, Message, WrappedGenerator

log = logging.getLogger(__name__)


class GenerationObserver(Protocol):
    """Told of each generation a ``MeteredGenerator`` runs. Called on the generating thread;
    it must be quick and must not raise."""

    def first_token(self, seconds: float) -> None:
        """The first piece of an answer came ``seconds`` after its generation started."""
        ...

    def generation_ended(
        self, *, tokens: int, seconds: float, first_token_seconds: float | None
    ) -> None:
        """A generation ended (finished, stopped early or failed) after writing ``tokens``
        tokens (by the model's own count) in ``seconds``; ``first_token_seconds`` is None when
        it wrote nothing."""
        ...


class MeteredGenerator(WrappedGenerator):
    """A ``Generator`` that reports each of its streams to ``observer``; otherwise the
    generator it wraps, unchanged."""

    def __init__(self, generator: Generator, observer: GenerationObserver) -> None:
        super().__init__(generator)
        self._observer = observer

    def stream(self, messages: Sequence[Message], *, max_new_tokens: int) -> Iterator[str]:
        started = time.perf_counter()
        first: float | None = None
        written: list[str] = []
        pieces = self._generator.stream(messages, max_new_tokens=max_new_tokens)
        try:
            for piece in pieces:
                if first is None:
                    first = time.perf_counter() - started
                    self._observer.first_token(first)
                written.append(piece)
                yield piece
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
            self._report(written, time.perf_counter() - started, first)

    def _report(self, written: list[str], seconds: float, first: float | None) -> None:
        try:
            tokens = self._generator.count_tokens("".join(written)) if written else 0
            self._observer.generation_ended(
                tokens=tokens, seconds=seconds, first_token_seconds=first
            )
        except Exception:  # measuring never costs an answer
            log.warning("could not measure a generation", exc_info=True)
