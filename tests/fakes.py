"""Test doubles behind the protocols: a hashing embedder, a scripted generator, a fixed judge."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence

import numpy as np

from rag.chunking import chunk_id
from rag.errors import ModelError
from rag.generation import Message
from rag.types import Chunk, Hit

_WORD = re.compile(r"\w+")


class HashEmbedder:
    """Bag of hashed words: texts sharing words are similar, others near orthogonal."""

    def __init__(self, dimension: int = 256, max_tokens: int = 64) -> None:
        self._dimension = dimension
        self._max_tokens = max_tokens
        self.calls: list[int] = []

    def warm_up(self) -> None:
        """Nothing to load."""

    @property
    def model_name(self) -> str:
        return "hash-embedder"

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text)) + text.count("\n")

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self._dimension, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            slot = int(hashlib.md5(word.encode()).hexdigest(), 16) % self._dimension
            vector[slot] += 1.0
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, 1))

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)


class ScriptedGenerator:
    """Replies from a queue (or one fixed reply) and records every prompt it was given."""

    def __init__(self, replies: Sequence[str] = ("The answer [1].",), window: int = 2048) -> None:
        self._replies = list(replies)
        self._window = window
        self.prompts: list[list[Message]] = []

    @property
    def model_name(self) -> str:
        return "scripted"

    @property
    def context_window(self) -> int:
        return self._window

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def warm_up(self) -> None:
        pass

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        return sum(self.count_tokens(m["content"]) for m in messages)

    def stream(self, messages: Sequence[Message], *, max_new_tokens: int) -> Iterator[str]:
        self.prompts.append(list(messages))
        reply = self._replies.pop(0) if len(self._replies) > 1 else self._replies[0]
        for word in reply.split(" "):
            yield word + " "


class FixedJudge:
    """A ``PassageJudge`` that gives each passage the score of the first key it contains;
    without any keys it fails as a model can (``ModelError``)."""

    def __init__(self, scores: dict[str, float]) -> None:
        self._scores = scores
        self.calls: list[tuple[str, list[str]]] = []

    def question_likelihoods(self, question: str, passages: Sequence[str]) -> list[float]:
        self.calls.append((question, list(passages)))
        if not self._scores:
            raise ModelError("the judge is out of memory")
        return [next((v for k, v in self._scores.items() if k in p), -5.0) for p in passages]


def make_hit(text: str, source: str = "/d/a.txt", score: float = 0.5) -> Hit:
    chunk = Chunk(id=chunk_id(source, text, 0), source=source, title="A", text=text, context="A")
    return Hit(chunk=chunk, score=score, similarity=score)
