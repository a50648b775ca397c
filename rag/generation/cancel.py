"""Stopping a generation whose answer nobody will read (the client went away)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from rag.generation import Generator, Message, WrappedGenerator


class GenerationCancelled(Exception):
    """The generation was stopped on purpose; its partial answer is of no use."""


class CancellableGenerator(WrappedGenerator):
    """A ``Generator`` that stops at the next piece once ``cancel`` is set: it closes the
    model's stream (which ends the model's work at its next token) and raises
    GenerationCancelled, so no answer is built from a partial one."""

    def __init__(self, generator: Generator, cancel: threading.Event) -> None:
        super().__init__(generator)
        self._cancel = cancel

    def stream(self, messages: Sequence[Message], *, max_new_tokens: int) -> Iterator[str]:
        if self._cancel.is_set():
            raise GenerationCancelled("the generation was cancelled before it started")
        pieces = self._generator.stream(messages, max_new_tokens=max_new_tokens)
        try:
            for piece in pieces:
                if self._cancel.is_set():
                    raise GenerationCancelled("the generation was cancelled")
                yield piece
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
