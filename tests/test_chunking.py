from __future__ import annotations

import itertools

import pytest

from rag.chunking import TokenChunker, chunk_id
from rag.types import Document, Section
from tests.fakes import HashEmbedder


def make_doc(*sections: Section, source: str = "/docs/a.md", title: str = "Guide") -> Document:
    return Document(source=source, title=title, sections=sections)


def chunker(embedder: HashEmbedder, size: int = 40, overlap: int = 8) -> TokenChunker:
    return TokenChunker(
        embedder.count_tokens,
        max_tokens=embedder.max_tokens,
        chunk_size=size,
        chunk_overlap=overlap,
    )


def test_no_chunk_exceeds_the_model_limit_with_its_context(embedder: HashEmbedder) -> None:
    words = " ".join(f"word{i}" for i in range(1000))
    doc = make_doc(Section(words, ("Install", "On Linux with a long heading path")))
    chunks = chunker(embedder, size=500).chunk(doc)  # asks for more than the model reads
    assert len(chunks) > 10
    for chunk in chunks:
        assert embedder.count_tokens(chunk.embedding_text) <= embedder.max_tokens - 2
        assert chunk.context == "Guide > Install > On Linux with a long heading path"


def test_offsets_point_into_the_document_text(embedder: HashEmbedder) -> None:
    doc = make_doc(
        Section("First section text. " * 30, ("One",)),
        Section("Second section words here. " * 30, ("Two",), page=None),
    )
    text = doc.text
    chunks = chunker(embedder).chunk(doc)
    assert {c.heading_path for c in chunks} == {("One",), ("Two",)}
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text


def test_overlap_repeats_text_between_neighbours(embedder: HashEmbedder) -> None:
    doc = make_doc(Section(" ".join(f"w{i}" for i in range(200))))
    chunks = chunker(embedder, size=40, overlap=10).chunk(doc)
    for left, right in itertools.pairwise(chunks):
        assert left.end > right.start  # overlapping spans


def test_ids_are_stable_and_content_derived(embedder: HashEmbedder) -> None:
    para = " ".join(["same"] * 25)
    text = f"{para}\n\n{para}\n\n{' '.join(['other'] * 25)}"
    first = chunker(embedder, size=32, overlap=0).chunk(make_doc(Section(text)))
    again = chunker(embedder, size=32, overlap=0).chunk(make_doc(Section(text)))
    assert [c.text for c in first] == [para, para, " ".join(["other"] * 25)]
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == 3  # repeated text still gets its own id
    assert first[0].id == chunk_id("/docs/a.md", para, 0)
    assert first[1].id == chunk_id("/docs/a.md", para, 1)
    moved = chunker(embedder, size=32, overlap=0).chunk(make_doc(Section(text), source="/b.md"))
    assert {c.id for c in moved}.isdisjoint(c.id for c in first)


def test_pages_are_kept(embedder: HashEmbedder) -> None:
    doc = make_doc(Section("page one text", page=1), Section("page two text", page=2))
    assert [c.page for c in chunker(embedder).chunk(doc)] == [1, 2]


@pytest.mark.real_models
def test_real_tokenizer_never_exceeds_256_word_pieces(real_embedder) -> None:  # type: ignore[no-untyped-def]
    text = "Configuration parameters: work_mem, maintenance_work_mem, σ-algebras 🙂. " * 300
    doc = make_doc(Section(text, ("Server Configuration", "Resource Consumption", "Memory")))
    chunks = TokenChunker(
        real_embedder.count_tokens,
        max_tokens=real_embedder.max_tokens,
        chunk_size=256,
        chunk_overlap=32,
    ).chunk(doc)
    tokenizer = real_embedder.model.tokenizer
    for chunk in chunks:
        assert len(tokenizer(chunk.embedding_text)["input_ids"]) <= 256


def test_a_sites_heading_above_the_pages_own_is_not_embedded(embedder: HashEmbedder) -> None:
    chunker = TokenChunker(embedder.count_tokens, max_tokens=256, chunk_size=200, chunk_overlap=0)
    doc = Document(
        source="/d/zorb.html",
        title="Zorb | Acme 2.1 Documentation",
        sections=[Section("Zorbs spin.", ("Acme 2.1 documentation", "Zorb", "Usage"))],
    )
    [chunk] = chunker.chunk(doc)
    assert chunk.context.split("\n")[0] == "Zorb > Usage"
    # A title that the first heading begins keeps both, as before.
    plain = Document(
        source="/d/z.html", title="Zorb — Docs", sections=[Section("Spin.", ("Zorb",))]
    )
    assert chunker.chunk(plain)[0].context.split("\n")[0] == "Zorb — Docs > Zorb"
