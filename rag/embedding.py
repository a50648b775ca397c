"""Embedder protocol and its sentence-transformers (torch) implementation.

The ONNX Runtime implementation, which needs no torch at run time, is in ``rag.onnx_embedding``.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rag.models import pick_device, resolve_embedding_model

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Turns text into unit-length vectors. Documents and queries are separate calls."""

    @property
    def model_name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Longest input in the model's own tokens, special tokens included."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model would read for ``text``, special tokens excluded."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


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


def embedding_model_name(spec: str) -> str:
    """Recorded with each collection: a package name as given, a folder by its absolute path.

    Every backend reports the same name for the same model, so collections do not care which
    one embedded them."""
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.is_dir() else spec


@functools.cache
def folder_metadata(folder: Path) -> tuple[int, int] | None:
    """(dimension, max_seq_length) from a sentence-transformers folder's configuration files,
    or None when its modules are not the plain Transformer -> Pooling [-> Normalize] kind."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            return None
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text())
        config = json.loads((folder / "sentence_bert_config.json").read_text())
        return int(pooling["word_embedding_dimension"]), int(config["max_seq_length"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
