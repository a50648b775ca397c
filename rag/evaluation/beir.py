"""BEIR datasets: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/SPLIT.tsv`` of one folder."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.errors import InvalidInputError
from rag.evaluation.jsonl import read_jsonl
from rag.types import Document, Section


@dataclass(frozen=True)
class CorpusDoc:
    id: str
    title: str
    text: str


@dataclass
class BeirDataset:
    corpus: dict[str, CorpusDoc]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    @property
    def evaluated_queries(self) -> list[str]:
        """Queries of the split that have at least one relevant document and a text."""
        return [
            q
            for q in sorted(self.qrels, key=_natural)
            if q in self.queries and any(g > 0 for g in self.qrels[q].values())
        ]


def _natural(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (1 << 62, key)


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query-id corpus-id score`` (tab-separated, with a header line)."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for number, row in enumerate(reader, 1):
            if not row or (number == 1 and row[0] == "query-id"):
                continue
            if len(row) < 3:
                raise InvalidInputError(f"{path}:{number}: expected query-id, corpus-id, score")
            qrels.setdefault(row[0], {})[row[1]] = int(float(row[2]))
    return qrels


def load_beir(dataset_dir: Path, split: str = "test") -> BeirDataset:
    """A BEIR dataset folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv."""
    qrels_path = dataset_dir / "qrels" / f"{split}.tsv"
    for path in (dataset_dir / "corpus.jsonl", dataset_dir / "queries.jsonl", qrels_path):
        if not path.is_file():
            raise InvalidInputError(f"{path}: no such file (expected a BEIR dataset folder)")
    corpus = {
        str(r["_id"]): CorpusDoc(str(r["_id"]), str(r.get("title") or ""), str(r.get("text") or ""))
        for r in read_jsonl(dataset_dir / "corpus.jsonl")
    }
    queries = {str(r["_id"]): str(r["text"]) for r in read_jsonl(dataset_dir / "queries.jsonl")}
    return BeirDataset(corpus, queries, load_qrels(qrels_path))


def corpus_documents(corpus: Iterable[CorpusDoc]) -> Iterator[Document]:
    """One Document per corpus row: source = doc id, the title as the document's title. A row
    without text falls back to its title; a row with neither is left out."""
    for doc in corpus:
        text = doc.text.strip() or doc.title.strip()
        if text:
            yield Document(source=doc.id, title=doc.title.strip(), sections=(Section(text),))
