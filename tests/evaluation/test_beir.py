from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import InvalidInputError
from rag.evaluation.beir import CorpusDoc, corpus_documents, load_beir
from rag.types import Document, Section
from tests.evaluation.tiny_beir import write_beir


def test_load_beir(tmp_path: Path) -> None:
    dataset = load_beir(write_beir(tmp_path / "tiny"), "test")
    assert len(dataset.corpus) == 5 and dataset.corpus["d1"].title == "Lighthouses"
    assert dataset.queries["9"] == "a query with no qrels"
    assert dataset.qrels["2"] == {"d2": 2, "d1": 0}
    assert dataset.evaluated_queries == ["1", "2", "3", "4"]
    assert load_beir(tmp_path / "tiny", "train").evaluated_queries == ["1"]
    with pytest.raises(InvalidInputError, match=r"dev\.tsv"):
        load_beir(tmp_path / "tiny", "dev")


def test_corpus_documents_use_the_doc_id_as_source() -> None:
    docs = list(corpus_documents([CorpusDoc("7", " T ", "body"), CorpusDoc("8", "", "")]))
    assert docs == [Document(source="7", title="T", sections=(Section("body"),))]
