"""Re-embedding without downtime: build beside, switch atomically, on both stores."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ingest.runs import ingest_into, reindex
from rag.catalog import list_collections, open_collection, state_path
from rag.config import Settings
from rag.errors import CollectionNotFoundError
from rag.store.base import SearchQuery
from tests.fakes import HashEmbedder


def settings_for(kind: str, tmp_path: Path, chunk_size: int) -> Settings:
    extra = {"store": "qdrant", "qdrant_url": str(tmp_path / "q")} if kind == "qdrant" else {}
    return Settings(data_dir=tmp_path / "data", chunk_size=chunk_size, chunk_overlap=4, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["edge", "qdrant"])
def test_reindex_switches_to_the_rebuilt_collection(tmp_path: Path, kind: str) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"{i}.txt").write_text(f"lantern {i} words " * 40)
    embedder = HashEmbedder()
    before = settings_for(kind, tmp_path, chunk_size=48)
    store = open_collection(before, embedder, create=True)
    ingest_into(before, store, embedder, [docs])
    old_ids, old_count = store.point_ids(), store.count()
    store.close()
    (docs / "2.txt").unlink()  # gone since: left out of the rebuild

    after = settings_for(kind, tmp_path, chunk_size=32)  # new chunking settings
    switched = threading.Event()

    def switching():  # type: ignore[no-untyped-def]
        import contextlib

        @contextlib.contextmanager
        def bracket():  # type: ignore[no-untyped-def]
            # the old collection still answers right up to the switch
            old = open_collection(after, embedder)
            assert old.point_ids() == old_ids
            old.close()
            yield
            switched.set()

        return bracket()

    report = reindex(after, embedder, switching=switching)
    assert switched.is_set() and len(report.added) == 2 and report.ok
    assert list_collections(after) == ["default"]
    store = open_collection(after, embedder)
    try:
        new_ids = store.point_ids()
        assert new_ids and new_ids.isdisjoint(old_ids) and len(new_ids) != old_count
        hit = store.search(SearchQuery("lantern 1", embedder.embed_query("lantern 1"), k=1))[0]
        assert Path(hit.chunk.source).name in {"0.txt", "1.txt"}
    finally:
        store.close()
    # The rebuilt collection's sync state is in place: a re-run of the folder does nothing.
    assert state_path(after, "default").is_file()
    store = open_collection(after, embedder)
    try:
        assert not ingest_into(after, store, embedder, [docs]).changed
    finally:
        store.close()


def test_reindex_of_an_unknown_collection(tmp_path: Path) -> None:
    with pytest.raises(CollectionNotFoundError, match="no ingested documents"):
        reindex(Settings(data_dir=tmp_path), HashEmbedder(), collection="nothing")
