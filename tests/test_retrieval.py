"""HybridRetriever on the real Edge store: results spread over files, a chunk's neighbours."""

from __future__ import annotations

from pathlib import Path

from ingest.loaders import load_document
from rag.chunking import TokenChunker
from rag.config import Settings
from rag.quoting import join_chunks
from rag.retrieval import HybridRetriever, spread_sources
from rag.store.base import CollectionInfo
from rag.store.factory import open_store
from rag.types import Hit
from tests.fakes import HashEmbedder, make_hit


def test_spread_sources_takes_one_per_file_first_then_fills_in_rank_order() -> None:
    hits = [
        make_hit("a1", "/d/a.md", 0.9),
        make_hit("a2", "/d/a.md", 0.8),
        make_hit("b1", "/d/b.md", 0.7),
        make_hit("a3", "/d/a.md", 0.6),
        make_hit("c1", "/d/c.md", 0.5),
    ]

    def texts(found: list[Hit]) -> list[str]:
        return [h.chunk.text for h in found]

    assert texts(spread_sources(hits, 3, 1)) == ["a1", "b1", "c1"]
    assert texts(spread_sources(hits, 4, 1)) == ["a1", "b1", "c1", "a2"]
    assert texts(spread_sources(hits, 4, 2)) == ["a1", "a2", "b1", "c1"]
    assert texts(spread_sources(hits, 3, 0)) == ["a1", "a2", "b1"]
    assert texts(spread_sources(hits, 10, 1)) == ["a1", "b1", "c1", "a2", "a3"]
    assert spread_sources([], 5, 1) == []


def test_a_file_with_many_matching_chunks_leaves_room_for_another_file(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    settings = Settings(data_dir=tmp_path, min_similarity=0.0)
    store = open_store(
        settings, CollectionInfo(embedder.model_name, embedder.dimension), create=True
    )
    long_page = [f"descale the coffee machine with citric acid, step {n}" for n in range(6)]
    chunks = [make_hit(text, "/d/machine.md").chunk for text in long_page]
    chunks.append(make_hit("the coffee machine warranty lasts two years", "/d/warranty.md").chunk)
    store.upsert(chunks, embedder.embed_documents([c.embedding_text for c in chunks]))
    try:
        question = "descale the coffee machine with citric acid"
        spread = HybridRetriever(embedder, store, settings).search(question, k=3)
        sources = [h.chunk.source for h in spread]
        assert sources == ["/d/machine.md", "/d/warranty.md", "/d/machine.md"]
        unlimited = settings.model_copy(update={"max_chunks_per_source": 0})
        crowded = HybridRetriever(embedder, store, unlimited).search(question, k=3)
        assert {h.chunk.source for h in crowded} == {"/d/machine.md"}
        # One matching file only: its chunks fill the k results.
        alone = HybridRetriever(embedder, store, settings).search(
            question, k=6, source_prefix="/d/machine.md"
        )
        assert len(alone) == 6
    finally:
        store.close()


def test_around_is_a_chunk_with_its_neighbours_in_its_section(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    facts = " ".join(f"Tuple fact {i} is stated here." for i in range(40))
    page = tmp_path / "guide.md"
    page.write_text(f"# Guide\n\n## Tuples\n\n{facts}\n\n## Lists\n\nLists grow and shrink.\n")
    chunker = TokenChunker(embedder.count_tokens, max_tokens=64, chunk_size=32, chunk_overlap=0)
    chunks = chunker.chunk(load_document(page))
    tuples = [c for c in chunks if c.heading_path[-1:] == ("Tuples",)]
    lists = [c for c in chunks if c.heading_path[-1:] == ("Lists",)]
    assert len(tuples) >= 4 and len(lists) == 1
    settings = Settings(data_dir=tmp_path / "data")
    store = open_store(
        settings, CollectionInfo(embedder.model_name, embedder.dimension), create=True
    )
    store.upsert(chunks[::-1], embedder.embed_documents([c.embedding_text for c in chunks[::-1]]))
    try:
        retriever = HybridRetriever(embedder, store, settings)
        assert retriever.around(tuples[1]) == tuples[0:3]
        assert retriever.around(tuples[0]) == tuples[0:2]
        assert retriever.around(tuples[-1]) == tuples[-2:]  # the next chunk is another section
        assert retriever.around(lists[0]) == lists
        assert join_chunks(tuples) == facts  # neighbours joined read as the section was written
        gone = make_hit("deleted since the search", str(page)).chunk
        assert retriever.around(gone) == [gone]
    finally:
        store.close()
