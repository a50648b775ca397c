from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.chunking import chunk_id
from rag.config import Settings
from rag.errors import CollectionMismatchError, CollectionNotFoundError, StoreLockedError
from rag.store.base import CollectionInfo, SearchQuery, VectorStore, path_prefixes
from rag.store.factory import collections_for, open_store
from rag.types import Chunk
from tests.fakes import HashEmbedder, make_hit

TEXTS = {
    "/docs/pg/runtime-config-resource.html": "work_mem limits the memory a sort may use",
    "/docs/pg/sql-select.html": "SELECT retrieves rows from zero or more tables",
    "/docs/py/tutorial.html": "Python lists are mutable sequences of items",
}


def store_settings(kind: str, tmp_path: Path) -> Settings:
    if kind == "edge":
        return Settings(data_dir=tmp_path)
    return Settings(data_dir=tmp_path, store="qdrant", qdrant_url=str(tmp_path / "qdrant-local"))


@pytest.fixture(params=["edge", "qdrant"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def info(embedder: HashEmbedder) -> CollectionInfo:
    return CollectionInfo(embedder.model_name, embedder.dimension)


@pytest.fixture
def store(
    kind: str, tmp_path: Path, embedder: HashEmbedder, info: CollectionInfo
) -> Iterator[VectorStore]:
    opened = open_store(store_settings(kind, tmp_path), info, create=True)
    chunks = [
        Chunk(id=chunk_id(src, text, 0), source=src, title=src.rsplit("/", 1)[1], text=text)
        for src, text in TEXTS.items()
    ]
    opened.upsert(chunks, embedder.embed_documents([c.embedding_text for c in chunks]))
    yield opened
    opened.close()


def query(embedder: HashEmbedder, text: str, **kwargs: object) -> SearchQuery:
    return SearchQuery(text=text, vector=embedder.embed_query(text), **kwargs)  # type: ignore[arg-type]


def test_hybrid_search_ranks_the_matching_chunk_first(
    store: VectorStore, embedder: HashEmbedder
) -> None:
    hits = store.search(query(embedder, "memory a sort may use", k=3))
    assert hits[0].chunk.source == "/docs/pg/runtime-config-resource.html"
    assert hits[0].similarity > hits[-1].similarity
    assert hits[0].score >= hits[1].score


def test_bm25_alone_finds_an_exact_term(store: VectorStore, embedder: HashEmbedder) -> None:
    # A query vector pointing nowhere: only the BM25 prefetch can find the chunk.
    search = SearchQuery(text="mutable", vector=embedder.embed_query("zzz"), k=1)
    assert store.search(search)[0].chunk.source == "/docs/py/tutorial.html"


def test_source_prefix_filter(store: VectorStore, embedder: HashEmbedder) -> None:
    hits = store.search(query(embedder, "memory sort rows lists", k=5, source_prefix="/docs/pg/"))
    assert {h.chunk.source for h in hits} == {
        "/docs/pg/runtime-config-resource.html",
        "/docs/pg/sql-select.html",
    }


def test_delete_and_delete_source(store: VectorStore, embedder: HashEmbedder) -> None:
    assert store.count() == 3
    assert store.count(exact=False) == 3  # the estimate the retriever sizes collections by
    store.delete_source("/docs/pg/sql-select.html")
    assert store.count() == 2
    first = store.search(query(embedder, "lists", k=1))[0]
    store.delete([first.chunk.id])
    assert store.count() == 1


def test_reopen_keeps_data_and_refuses_another_model(
    kind: str, tmp_path: Path, store: VectorStore, info: CollectionInfo
) -> None:
    store.close()
    settings = store_settings(kind, tmp_path)
    reopened = open_store(settings, info)
    assert reopened.count() == 3
    reopened.close()
    with pytest.raises(CollectionMismatchError, match="hash-embedder"):
        open_store(settings, CollectionInfo("other-model", 384))
    open_store(settings, info).close()  # a refused open leaves it usable


def test_missing_collection_is_a_clear_error(
    kind: str, tmp_path: Path, info: CollectionInfo
) -> None:
    with pytest.raises(CollectionNotFoundError, match="nope"):
        open_store(store_settings(kind, tmp_path), info, collection="nope")


def test_path_prefixes() -> None:
    assert path_prefixes("/a/b/c.html") == ["/", "/a", "/a/b", "/a/b/c.html"]


def test_second_process_gets_a_clear_message(tmp_path: Path, info: CollectionInfo) -> None:
    held = open_store(Settings(data_dir=tmp_path), info, create=True)
    try:
        script = textwrap.dedent(
            f"""
            from rag.config import Settings
            from rag.errors import StoreLockedError
            from rag.store.base import CollectionInfo
            from rag.store.factory import open_store
            try:
                settings = Settings(data_dir={str(tmp_path)!r})
                open_store(settings, CollectionInfo("hash-embedder", 256))
            except StoreLockedError as exc:
                print("LOCKED:", exc)
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        assert "LOCKED:" in out.stdout, out.stderr
        assert "another process" in out.stdout and "RAG_STORE=qdrant" in out.stdout
    finally:
        held.close()
    with pytest.raises(StoreLockedError):  # also within one process, while held
        first = open_store(Settings(data_dir=tmp_path), info)
        try:
            open_store(Settings(data_dir=tmp_path), info)
        finally:
            first.close()


def test_edge_builds_its_vector_index_once_enough_vectors_are_unindexed(
    settings: Settings,
) -> None:
    embedder = HashEmbedder(dimension=384)
    store = open_store(
        settings, CollectionInfo(embedder.model_name, embedder.dimension), create=True
    )
    try:
        few = [make_hit(f"text {i} about topic{i}", f"/d/{i}.txt").chunk for i in range(100)]
        store.upsert(few, embedder.embed_documents([c.embedding_text for c in few]))
        assert not store.build_index()  # 100 vectors: searching them all is cheap
        many = [make_hit(f"more {i} on subject{i}", f"/e/{i}.txt").chunk for i in range(12_000)]
        store.upsert(many, embedder.embed_documents([c.embedding_text for c in many]))
        assert store.build_index()
        assert not store.build_index()  # nothing new since
        query = SearchQuery("subject7", embedder.embed_query("more 7 on subject7"), k=3)
        assert store.search(query)[0].chunk.source == "/e/7.txt"
        assert store.count() == 12_100
        # A quarter of the points written again (a re-sync): the index holds their old
        # versions, deleted, until it is rebuilt without them. The 3,000 new ones are few
        # enough to be read one by one.
        edited = [replace(c, text=f"edited {c.text}") for c in many[:3_000]]
        store.upsert(edited, embedder.embed_documents([c.embedding_text for c in edited]))
        info = store._shard.info()  # type: ignore[attr-defined]
        assert info.indexed_vectors_count > 2 * info.points_count  # old versions held
        assert store.build_index()
        info = store._shard.info()  # type: ignore[attr-defined]
        assert info.indexed_vectors_count == 2 * 12_100 - 3_000  # none held; new ones apart
        assert store.search(SearchQuery("edited", embedder.embed_query(edited[7].text), k=1))[
            0
        ].chunk.text.startswith("edited ")
        # Deleted points linger in the index until it is rebuilt: a fifth of it is enough.
        store.delete([c.id for c in many[4_000:5_500]])
        assert not store.build_index()  # 1,500 of the 9,100 indexed points: under a fifth
        store.delete([c.id for c in many[5_500:9_500]])
        assert store.build_index()
        info = store._shard.info()  # type: ignore[attr-defined]
        assert info.points_count == 6_600
        assert info.indexed_vectors_count == 2 * 6_600 - 3_000
        assert not store.build_index()
        kept = SearchQuery("subject10007", embedder.embed_query("more 10007 on subject10007"), k=3)
        assert store.search(kept)[0].chunk.source == "/e/10007.txt"
    finally:
        store.close()


def test_word_counts_are_chunks_holding_each_word_up_to_a_limit(
    store: VectorStore, embedder: HashEmbedder
) -> None:
    more = [make_hit(f"rows number {n}", f"/docs/rows-{n}.html").chunk for n in range(3)]
    store.upsert(more, embedder.embed_documents([c.embedding_text for c in more]))
    # BM25 stems ("sequence" matches "sequences"); stopwords are left out.
    words = ["sequence", "rows", "matplotlib", "the", "bcrypt"]
    assert store.word_counts(words, up_to=1) == {
        "sequence": 1,
        "rows": 1,
        "matplotlib": 0,
        "bcrypt": 0,
    }
    assert store.word_counts(words, up_to=10) == {
        "sequence": 1,
        "rows": 4,
        "matplotlib": 0,
        "bcrypt": 0,
    }
    assert store.word_counts([], up_to=3) == {}


def test_source_chunks_are_one_files_chunks_in_reading_order(
    store: VectorStore, embedder: HashEmbedder
) -> None:
    src = "/docs/py/tutorial.html"
    later = [
        Chunk(id=chunk_id(src, t, 0), source=src, title="t", text=t, start=start, end=end)
        for t, start, end in [("Tuples are immutable.", 90, 111), ("Lists grow.", 50, 61)]
    ]
    store.upsert(later, embedder.embed_documents([c.text for c in later]))
    chunks = store.source_chunks(src)
    assert [c.text for c in chunks] == [TEXTS[src], "Lists grow.", "Tuples are immutable."]
    assert [(c.start, c.end) for c in chunks[1:]] == [(50, 61), (90, 111)]
    assert store.source_chunks("/docs/nowhere.html") == []


def test_containing_finds_chunks_holding_a_text_as_written(
    store: VectorStore, embedder: HashEmbedder
) -> None:
    src = "/docs/py/cmdline.html"
    texts = ["-O\n\nRemove assert statements.", "-o\n\nWrite output to a file."]
    options = [
        Chunk(id=chunk_id(src, t, i), source=src, title="t", text=t) for i, t in enumerate(texts)
    ]
    store.upsert(options, embedder.embed_documents(texts))
    # Case and punctuation count: BM25 would read both as the one-letter word "o".
    assert [c.text for c in store.containing("-O")] == [texts[0]]
    assert {c.text for c in store.containing("-o")} == {texts[1]}
    assert [c.source for c in store.containing("sort may")] == [
        "/docs/pg/runtime-config-resource.html"
    ]
    assert store.containing("-O", source_prefix="/docs/pg") == []
    assert [c.id for c in store.containing("-O", source_prefix="/docs/py/")] == [options[0].id]
    assert store.containing("nowhere at all") == []


def test_collections_list_lock_drop_and_swap_alike_on_both_stores(
    kind: str, tmp_path: Path, info: CollectionInfo, embedder: HashEmbedder
) -> None:
    settings = store_settings(kind, tmp_path)
    collections = collections_for(settings)
    assert collections.exclusive is (kind == "edge")
    for name in ("alpha", "beta"):
        collections.open(name, info, create=True).close()
    built = collections.staging_name("alpha")
    staged = collections.open(built, info, create=True)
    chunk = Chunk(id=chunk_id("/n.txt", "new text", 0), source="/n.txt", title="n", text="new")
    staged.upsert([chunk], embedder.embed_documents([chunk.embedding_text]))
    staged.close()
    assert collections.list() == ["alpha", "beta"]  # a rebuild under way is not listed

    collections.swap("alpha", built)
    swapped = collections.open("alpha", info)
    assert swapped.point_ids() == {chunk.id}
    swapped.close()

    with collections.lock("beta"), pytest.raises(StoreLockedError):
        collections.drop("beta")  # held by the lock above
    collections.drop("beta")
    assert collections.list() == ["alpha"]
    with pytest.raises(CollectionNotFoundError, match="beta"):
        collections.drop("beta")


def test_an_open_edge_collection_cannot_be_locked_or_dropped(
    tmp_path: Path, info: CollectionInfo
) -> None:
    collections = collections_for(Settings(data_dir=tmp_path))
    held = collections.open("held", info, create=True)
    try:
        with pytest.raises(StoreLockedError, match="another process"):
            collections.drop("held")
    finally:
        held.close()
    collections.drop("held")
    assert collections.list() == []


def test_search_one_queries_a_single_vector_without_fusion(
    store: VectorStore, embedder: HashEmbedder
) -> None:
    text = "memory a sort may use"
    vector = embedder.embed_query(text)
    dense = store.search_one("dense", text=text, vector=vector, k=3)
    assert dense[0].chunk.source == "/docs/pg/runtime-config-resource.html"
    assert len(dense) == 3 and dense[0].score >= dense[1].score >= dense[2].score
    ((_, stored),) = store.fetch([dense[0].chunk.id])
    assert dense[0].score == pytest.approx(float(vector @ stored), abs=1e-5)  # the cosine
    assert dense[0].similarity == dense[0].score
    # BM25 alone: only chunks holding the term, scored by BM25, with no cosine.
    bm25 = store.search_one("bm25", text="mutable", vector=None, k=3)
    assert [h.chunk.source for h in bm25] == ["/docs/py/tutorial.html"]
    assert bm25[0].score > 0 and bm25[0].similarity == 0.0
    assert store.search_one("bm25", text="the of and", vector=None, k=3) == []  # stopwords
    with pytest.raises(ValueError, match="query vector"):
        store.search_one("dense", text=text, vector=None, k=3)


def test_recommend_finds_chunks_near_stored_points_leaving_out_a_source(
    store: VectorStore, embedder: HashEmbedder
) -> None:
    extra = Chunk(
        id=chunk_id("/docs/pg/b.html", "x", 0),
        source="/docs/pg/b.html",
        title="b",
        text="work_mem limits the memory a sort may use, per operation",
    )
    store.upsert([extra], embedder.embed_documents([extra.embedding_text]))
    seed = chunk_id("/docs/pg/runtime-config-resource.html", TEXTS[next(iter(TEXTS))], 0)
    hits = store.recommend([seed], k=3, exclude_source=None)
    assert seed not in {h.chunk.id for h in hits}
    assert hits[0].chunk.source == "/docs/pg/b.html"  # the near-duplicate ranks first
    assert hits[0].similarity == pytest.approx(hits[0].score) and hits[0].score > 0.5
    kept = store.recommend([seed], k=3, exclude_source="/docs/pg/b.html")
    assert "/docs/pg/b.html" not in {h.chunk.source for h in kept} and kept
    assert store.recommend([], k=3, exclude_source=None) == []


def test_scan_vectors_pages_every_point_with_its_vector(
    store: VectorStore, embedder: HashEmbedder
) -> None:
    pages = list(store.scan_vectors(fields=["source"], batch=2))
    ids = [i for page in pages for i in page[0]]
    assert sorted(ids) == sorted(store.point_ids())
    for page_ids, payloads, vectors in pages:
        assert vectors.shape == (len(page_ids), embedder.dimension)
        assert all(set(p) == {"source"} for p in payloads)
    by_id = {i: v for page in pages for i, v in zip(page[0], page[2], strict=True)}
    _, vector = store.fetch([ids[0]])[0]
    assert by_id[ids[0]] == pytest.approx(vector)


def test_indexed_dense_search_finds_most_of_the_exact_nearest(settings: Settings) -> None:
    """Through the HNSW index, a dense search of 100 (alone, and as fusion's prefetch) returns
    most of what reading every vector would: its beam is wider than the results it wants
    (``hnsw_ef``)."""
    rng = np.random.default_rng(7)
    dimension, k = 384, 100
    vectors = rng.standard_normal((12_000, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = open_store(settings, CollectionInfo("random", dimension), create=True)
    try:
        chunks = [make_hit(f"text {i}", f"/r/{i}.txt").chunk for i in range(len(vectors))]
        store.upsert(chunks, vectors)
        assert store.build_index()
        found = total = 0
        for asked in vectors[:20] + 0.05 * rng.standard_normal((20, dimension)).astype(np.float32):
            asked /= np.linalg.norm(asked)
            exact = {chunks[i].id for i in np.argsort(-(vectors @ asked))[:k]}
            hits = store.search_one("dense", text="", vector=asked, k=k)
            fused = store.search(SearchQuery("", asked, k=k, prefetch_k=k))
            found += len(exact & {h.chunk.id for h in hits}) + len(
                exact & {h.chunk.id for h in fused}
            )
            total += 2 * k
        # Random unit vectors are the hardest case for HNSW: a beam as wide as the results
        # finds about half of them here, real embeddings far more.
        assert found / total >= 0.85, found / total
    finally:
        store.close()
