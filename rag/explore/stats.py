"""What happened to each question asked (abstained, quoted, best similarity; never its
text), kept in SQLite under DATA_DIR, and the series ``GET /v1/stats`` reports."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.config import Settings


@dataclass(frozen=True)
class QuestionOutcome:
    collection: str
    abstained: bool
    quoted: bool
    """The answer quotes a passage instead of the model's text."""
    fallback: bool
    """Quoted because the model's answer failed the grounding check (not by quote mode)."""
    top_similarity: float | None
    """Cosine similarity of the best retrieved chunk; None when nothing was retrieved."""


@dataclass(frozen=True)
class StatsBucket:
    start: float
    questions: int
    abstention_rate: float
    quote_rate: float
    fallback_rate: float
    similarity_p10: float | None
    similarity_p50: float | None
    similarity_p90: float | None


class QuestionLog:
    """Safe to share between threads; each call opens its own short transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS questions (at REAL NOT NULL, collection TEXT NOT "
                "NULL, abstained INTEGER NOT NULL, quoted INTEGER NOT NULL, fallback INTEGER "
                "NOT NULL, top_similarity REAL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS questions_at ON questions (at)")

    @classmethod
    def for_settings(cls, settings: Settings) -> QuestionLog:
        return cls(settings.data_dir / "stats" / "questions.sqlite")

    def record(self, outcome: QuestionOutcome, *, at: float | None = None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO questions VALUES (?, ?, ?, ?, ?, ?)",
                (
                    time.time() if at is None else at,
                    outcome.collection,
                    int(outcome.abstained),
                    int(outcome.quoted),
                    int(outcome.fallback),
                    outcome.top_similarity,
                ),
            )

    def series(
        self, *, since: float, bucket_seconds: float, collection: str | None = None
    ) -> list[StatsBucket]:
        """One bucket per ``bucket_seconds`` from ``since`` that holds a question, oldest first."""
        query = (
            "SELECT at, abstained, quoted, fallback, top_similarity FROM questions WHERE at >= ?"
        )
        args: list[object] = [since]
        if collection is not None:
            query += " AND collection = ?"
            args.append(collection)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY at", args).fetchall()
        buckets: dict[int, list[tuple[float, int, int, int, float | None]]] = {}
        for row in rows:
            buckets.setdefault(int((row[0] - since) // bucket_seconds), []).append(row)
        return [_bucket(since + i * bucket_seconds, buckets[i]) for i in sorted(buckets)]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _bucket(start: float, rows: list[tuple[float, int, int, int, float | None]]) -> StatsBucket:
    n = len(rows)
    similarities = [r[4] for r in rows if r[4] is not None]
    p10, p50, p90 = (
        (float(q) for q in np.percentile(similarities, [10, 50, 90]))
        if similarities
        else (None, None, None)
    )
    return StatsBucket(
        start=start,
        questions=n,
        abstention_rate=sum(r[1] for r in rows) / n,
        quote_rate=sum(r[2] for r in rows) / n,
        fallback_rate=sum(r[3] for r in rows) / n,
        similarity_p10=p10,
        similarity_p50=p50,
        similarity_p90=p90,
    )
