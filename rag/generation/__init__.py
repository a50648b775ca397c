"""Generator protocol: chat messages in, streamed text out."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, TypedDict


class Message(TypedDict):
    role: str
    content: str


class Generator(Protocol):
    """A chat model. Implementations: TransformersGenerator (local), OpenAIChatGenerator."""

    @property
    def model_name(self) -> str: ...

    @property
    def context_window(self) -> int:
        """Tokens the model can attend to: prompt and answer together."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def warm_up(self) -> None:
        """Load what the model needs now rather than on the first request (a no-op where
        nothing loads)."""
        ...

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens of the messages once the chat template is applied."""
        ...

    def stream(self, messages: Sequence[Message], *, max_new_tokens: int) -> Iterator[str]:
        """Yield the answer piece by piece as the model produces it."""
        ...


class PassageJudge(Protocol):
    """Which passage answers a question, judged by a language model. Implementation:
    TransformersGenerator (the OpenAI chat API gives log-probabilities only of the tokens a
    model writes, not of a given text, so OpenAIChatGenerator cannot judge)."""

    def question_likelihoods(self, question: str, passages: Sequence[str]) -> list[float]:
        """For each passage, the mean log-probability per token of the question written after
        it, as a question that the passage answers: higher means the passage fits better."""
        ...


def close_generator(generator: Generator | None) -> None:
    """Release what a generator holds (a connection pool, a decode thread), where it has
    a ``close``."""
    close = getattr(generator, "close", None)
    if close is not None:
        close()


class WrappedGenerator:
    """Base of a ``Generator`` that wraps another and changes only how it streams: everything
    else is the wrapped generator's."""

    def __init__(self, generator: Generator) -> None:
        self._generator = generator

    @property
    def model_name(self) -> str:
        return self._generator.model_name

    @property
    def context_window(self) -> int:
        return self._generator.context_window

    def count_tokens(self, text: str) -> int:
        return self._generator.count_tokens(text)

    def warm_up(self) -> None:
        self._generator.warm_up()

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        return self._generator.prompt_tokens(messages)
