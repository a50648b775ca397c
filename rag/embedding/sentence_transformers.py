"""The Embedder on PyTorch through sentence-transformers: the reference vectors, and a GPU's.

Importing torch and loading the weights happen in ``warm_up`` (or on first use), never at
import or construction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rag.embedding.folder import embedding_model_name, folder_metadata
from rag.models import pick_device, resolve_embedding_model

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (or any sentence-transformers folder), batched and normalized."""

    def __init__(self, model: str, *, device: str = "auto", batch_size: int = 32) -> None:
        self._spec = model
        self._device_setting = device
        self._batch_size = batch_size
        self._model: SentenceTransformer | None = None

    def warm_up(self) -> None:
        if self._model is not None:
            return
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        path = resolve_embedding_model(self._spec)
        device = pick_device(self._device_setting)
        started = time.perf_counter()
        self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
        log.info(
            "embedding model %s loaded on %s in %.2fs",
            self._spec,
            device,
            time.perf_counter() - started,
        )

    @property
    def model(self) -> SentenceTransformer:
        self.warm_up()
        assert self._model is not None
        return self._model

    @property
    def backend(self) -> str:
        return "torch"

    @property
    def model_name(self) -> str:
        return embedding_model_name(self._spec)

    @property
    def dimension(self) -> int:
        # Read from the model's files while it is not loaded: a sync that finds nothing to
        # embed then never pays the seconds of importing torch and loading the weights.
        known = self._model is None and folder_metadata(resolve_embedding_model(self._spec))
        if known:
            return known[0]
        dim = self.model.get_embedding_dimension()
        assert dim is not None
        return int(dim)

    @property
    def max_tokens(self) -> int:
        known = self._model is None and folder_metadata(resolve_embedding_model(self._spec))
        if known:
            return known[1]
        limit = self.model.max_seq_length or self.model.tokenizer.model_max_length
        return int(limit)

    def count_tokens(self, text: str) -> int:
        # verbose=False: counting a long text is fine; only the model must not see one.
        ids = self.model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        return len(ids)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # encode() sorts by length before batching, so batches carry little padding.
        vectors = self.model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        result: np.ndarray = np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
        return result

    def embed_query(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.embed_documents([text])[0]
        return vector
