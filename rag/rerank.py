"""Optional second stage of retrieval: a cross-encoder re-scores the fused candidates.

None is shipped (RAG_RERANKER_MODEL is empty by default); any sentence-transformers
cross-encoder folder on disk works, e.g. cross-encoder/ms-marco-MiniLM-L-6-v2 copied in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from rag.errors import ModelError
from rag.models import pick_device

log = logging.getLogger(__name__)


class Reranker(Protocol):
    def warm_up(self) -> None:
        """Load the model now rather than on the first query."""
        ...

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        """One relevance score per text, higher is better."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder from a local folder, loaded on first use."""

    def __init__(self, path: Path, *, device: str = "auto", batch_size: int = 32) -> None:
        self._path = path
        self._device_setting = device
        self._batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            if not (self._path / "config.json").is_file():
                raise ModelError(
                    f"RAG_RERANKER_MODEL: {self._path} is not a model folder (no config.json)"
                )
            from sentence_transformers import CrossEncoder

            started = time.perf_counter()
            try:
                self._model = CrossEncoder(
                    str(self._path),
                    device=pick_device(self._device_setting),
                    local_files_only=True,
                )
            except (OSError, ValueError) as exc:
                raise ModelError(f"cannot load the re-ranker from {self._path}: {exc}") from exc
            log.info("re-ranker %s loaded in %.2fs", self._path, time.perf_counter() - started)

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        self.warm_up()
        pairs = [(query, text) for text in texts]
        predicted = self._model.predict(pairs, batch_size=self._batch_size, show_progress_bar=False)
        return [float(s) for s in predicted]
