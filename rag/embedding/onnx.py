"""The Embedder on ONNX Runtime: a sentence-transformers folder exported once, then run on CPU.

At query and ingest time this imports onnxruntime, tokenizers and numpy only, never torch,
which takes far longer to import. The first use exports the folder into ``cache_dir``
(``rag.embedding.export``, which imports torch for that step only); later starts load the
cached graph.

Batches hold texts of one token length only, so no batch carries padding and the graph needs
no attention mask (see ``rag.embedding.export`` for why that is faster). Pooling and
normalization follow the folder's sentence-transformers configuration and run in numpy.

A batch of a few texts (a question; a question's ranked sentences, grouped by length) runs on
one thread, in a session of its own: splitting so little work over the cores gains almost
nothing, and questions asked at once then run side by side, a core each, instead of all
fighting over every core (and over the cores the language model reads and decodes on). A
larger batch (ingestion) runs on all cores.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rag.embedding.export import ExportRecipe, ensure_exported
from rag.embedding.folder import FolderConfig, embedding_model_name, read_folder_config
from rag.models import has_int8_dot_product, resolve_embedding_model

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

# "openvino" runs an exported graph too, on OpenVINO (rag.embedding.openvino.OpenVinoEmbedder).
OnnxBackend = Literal["onnx-int8", "onnx-fp32", "openvino"]
# Batches of fewer texts than this run on one thread. On 2 cores, 4 texts of 64 tokens took
# 15 ms on both against 20 ms on one, and a single text the same on either.
SMALL_BATCH = 4


class OnnxEmbedder:
    """all-MiniLM-L6-v2 (or a BERT-like sentence-transformers folder) on ONNX Runtime, CPU.

    Subclasses run the exported graph elsewhere (``rag.embedding.openvino``) by overriding
    ``_recipe``, ``_open`` and ``_run``; tokenizing, the cache and normalization stay here.
    """

    _BACKENDS: tuple[OnnxBackend, ...] = ("onnx-int8", "onnx-fp32")

    def __init__(
        self,
        model: str,
        *,
        cache_dir: Path,
        backend: OnnxBackend = "onnx-int8",
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        if backend not in self._BACKENDS:
            raise ValueError(f"unknown backend {backend!r} for {type(self).__name__}")
        self._spec = model
        self._cache_dir = Path(cache_dir)
        self._backend: OnnxBackend = backend
        self._batch_size = batch_size
        self._threads = threads
        self._lock = threading.Lock()
        self._loaded: LoadedOnnxModel | None = None

    def warm_up(self) -> None:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()

    def _load(self) -> LoadedOnnxModel:
        from tokenizers import Tokenizer

        started = time.perf_counter()
        folder = resolve_embedding_model(self._spec)
        config = read_folder_config(folder)
        path = ensure_exported(folder, self._cache_dir, self._recipe(config))
        session = self._open(path)

        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # tokenizer.json carries its own padding and truncation (all-MiniLM's: pad to 128,
        # cut at 128). We pad ourselves (or never), and cut where sentence-transformers does.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=config.max_seq_length)
        counter = Tokenizer.from_file(str(folder / "tokenizer.json"))
        counter.no_padding()
        counter.no_truncation()
        log.info(
            "embedding model %s (%s) loaded from %s in %.2fs",
            self._spec,
            self._backend,
            path,
            time.perf_counter() - started,
        )
        return LoadedOnnxModel(session, tokenizer, counter, config, path)

    def _recipe(self, config: FolderConfig) -> ExportRecipe:
        if self._backend == "onnx-fp32":
            return ExportRecipe(quantize=False)
        return ExportRecipe(quantize=True, reduce_range=not has_int8_dot_product())

    def _open(self, path: Path) -> Any:
        wide = self._session(path, self._threads)
        return _Sessions(wide, wide if self._threads == 1 else self._session(path, 1))

    def _session(self, path: Path, threads: int | None) -> Any:
        import onnxruntime as ort  # type: ignore[import-untyped]

        options = ort.SessionOptions()
        # None: onnxruntime's default, one thread per physical core.
        options.intra_op_num_threads = threads or 0
        options.inter_op_num_threads = 1
        # No busy-waiting between operators. Spinning is a little faster on an idle machine,
        # but when other work holds a core (the language model, an ingest running beside
        # queries), spinning threads fight it for the core and embed far slower than sleeping
        # ones.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: its warnings are about graph internals
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    @property
    def loaded(self) -> LoadedOnnxModel:
        self.warm_up()
        assert self._loaded is not None
        return self._loaded

    @property
    def backend(self) -> OnnxBackend:
        return self._backend

    @property
    def model_name(self) -> str:
        # The same string as SentenceTransformerEmbedder's: a collection built by one backend
        # is searched by the other, whose vectors are close enough to mix.
        return embedding_model_name(self._spec)

    @property
    def dimension(self) -> int:
        if self._loaded is not None:
            return self._loaded.config.dimension
        return read_folder_config(resolve_embedding_model(self._spec)).dimension

    @property
    def max_tokens(self) -> int:
        if self._loaded is not None:
            return self._loaded.config.max_seq_length
        return read_folder_config(resolve_embedding_model(self._spec)).max_seq_length

    def count_tokens(self, text: str) -> int:
        return len(self.loaded.counter.encode(self._prepare(text), add_special_tokens=False).ids)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        loaded = self.loaded
        result = np.zeros((len(texts), loaded.config.dimension), dtype=np.float32)
        if not texts:
            return result
        encodings = loaded.tokenizer.encode_batch([self._prepare(t) for t in texts])
        self._run(loaded, [e.ids for e in encodings], result)
        norms = np.linalg.norm(result, axis=1, keepdims=True)
        result /= np.maximum(norms, 1e-12)
        return result

    def _run(self, loaded: LoadedOnnxModel, ids: list[list[int]], out: np.ndarray) -> None:
        """Writes each text's pooled (not yet normalized) vector into its row of ``out``."""
        sessions: _Sessions = loaded.session
        by_length: dict[int, list[int]] = {}
        for index, row in enumerate(ids):
            by_length.setdefault(len(row), []).append(index)
        for indices in by_length.values():
            for start in range(0, len(indices), self._batch_size):
                batch = indices[start : start + self._batch_size]
                array = np.array([ids[i] for i in batch], dtype=np.int64)
                session = sessions.single if len(batch) < SMALL_BATCH else sessions.wide
                hidden = session.run(None, {"input_ids": array})[0]
                out[batch] = _pool(np.asarray(hidden, dtype=np.float32), loaded.config.pooling)

    def embed_query(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.embed_documents([text])[0]
        return vector

    def _prepare(self, text: str) -> str:
        return text.lower() if self.loaded.config.do_lower_case else text


@dataclass(frozen=True, slots=True)
class _Sessions:
    """The graph opened twice: on every core (``wide``), and on one thread (``single``)."""

    wide: Any
    single: Any


@dataclass(frozen=True, slots=True)
class LoadedOnnxModel:
    """An exported graph ready to run, with the tokenizers and folder configuration it needs.

    ``session`` is whatever the embedder's ``_open`` returned for the graph (ONNX Runtime
    sessions here, OpenVINO's compiled model in ``OpenVinoEmbedder``)."""

    session: Any
    tokenizer: Tokenizer  # truncates at the model's window; pads never
    counter: Tokenizer  # neither truncates nor pads: counts a whole text
    config: FolderConfig
    path: Path


def _pool(hidden: np.ndarray, mode: str) -> np.ndarray:
    """(batch, length, dim) of unpadded texts -> (batch, dim), as sentence-transformers pools."""
    if mode == "cls_token":
        pooled = hidden[:, 0]
    elif mode == "max_tokens":
        pooled = hidden.max(axis=1)
    elif mode == "mean_sqrt_len_tokens":
        pooled = hidden.sum(axis=1) / np.sqrt(hidden.shape[1])
    else:
        pooled = hidden.mean(axis=1)
    return np.asarray(pooled, dtype=np.float32)
