"""The Python API (rag.library, exported lazily by ``rag``): open, ingest, search, ask, stream,
the async twins side by side, closing; and the examples of docs/python-api.md, run as written."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import rag
import rag.generation.local  # see below
from rag.chat import CORRECTION
from rag.config import Settings
from rag.generation import Message
from tests.conftest import CHILD_GUARD, MODEL_CACHE, PROJECT
from tests.fakes import HashEmbedder, ScriptedGenerator

COFFEE = "Descale the Brewmaster machine every 200 brewing cycles with citric acid."
BIKES = "Bicycles go in the basement cage next to the boiler room."
REPLY = "Descale it every 200 brewing cycles [1]."
QUESTION = "How often should I descale the Brewmaster machine?"
DOC_EXAMPLES = PROJECT / "docs" / "python-api.md"
# rag.generation.local is imported above, before the real_models guard replaces the model
# resolvers: a module first imported inside an unmarked test (as asking imports it) would
# keep the stand-in, and a later real_models test could not load the model.


def write_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "coffee.md").write_text(f"# Brewmaster\n\n## Descaling\n\n{COFFEE}\n")
    (folder / "office.txt").write_text(f"Office\n\n{BIKES}\n")
    return folder


def open_docs(tmp_path: Path, *replies: str, **overrides: Any) -> rag.Documents:
    """A Documents over the fakes in ``tmp_path``; its model replies ``replies`` in turn."""
    settings: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "model_cache_dir": MODEL_CACHE,
        "min_similarity": 0.2,
        "answer_mode": "generate",
    }
    return rag.open(
        embedder=HashEmbedder(),
        llm=ScriptedGenerator(replies or (REPLY,)),
        **(settings | overrides),
    )


def test_import_rag_does_no_work() -> None:
    code = (
        "import sys, rag; print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in {'rag', 'ingest', 'pydantic', 'numpy', 'langchain_core'}))"
    )
    # Without the real_models guard, which imports rag.models into every child of a test.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", CHILD_GUARD.ENV}}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, env=env, capture_output=True, text=True
    ).stdout
    assert out.strip() == "['rag']"
    assert {"open", "Documents", "Answer", "Hit", "Settings", "RagError"} <= set(dir(rag))
    assert rag.Answer.__module__ == "rag.types" and rag.IngestReport.__name__ == "IngestReport"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = rag.nothing  # type: ignore[attr-defined]


def test_ingest_search_ask_and_ingest_again_while_open(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "docs")
    with open_docs(tmp_path) as docs:
        assert docs.collection == "default"
        report = docs.ingest(folder)
        assert report.ok and len(report.added) == 2

        hits = docs.search("descale brewing cycles", k=2)
        assert Path(hits[0].chunk.source).name == "coffee.md"
        assert isinstance(hits[0], rag.Hit) and hits[0].chunk.heading_path
        assert docs.display_source(hits[0].chunk.source) == "coffee.md"
        assert docs.search("descale", source_prefix=str(folder.resolve()))
        assert docs.search("descale", source_prefix=str(tmp_path / "elsewhere")) == []

        answer = docs.ask(QUESTION)
        assert isinstance(answer, rag.Answer) and not answer.abstained
        assert answer.answer == REPLY
        assert [Path(c.source).name for c in answer.citations] == ["coffee.md"]
        assert isinstance(answer.citations[0], rag.Citation)

        # The collection is open: this ingestion writes through the same store.
        (folder / "office.txt").write_text(f"Office\n\n{BIKES} Umbrellas dry in the lobby.\n")
        again = docs.ingest([str(folder)])
        assert again.replaced == [str((folder / "office.txt").resolve())]
        assert "Umbrellas" in docs.search("umbrellas lobby", k=1)[0].chunk.text
        assert not docs.ingest(folder).changed

    with pytest.raises(rag.DocumentsClosedError, match="closed"):
        docs.search("descale")
    docs.close()  # closing twice is harmless


def test_the_cli_report_and_the_api_report_agree(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "docs")
    with open_docs(tmp_path) as docs:
        report = docs.ingest(folder)
    assert isinstance(report, rag.IngestReport)
    assert report.to_dict()["ok"] and "2 added" in report.summary()


def test_checked_stream_joins_into_the_checked_answer(tmp_path: Path) -> None:
    with open_docs(tmp_path, stream_mode="checked") as docs:
        docs.ingest(write_folder(tmp_path / "docs"))
        stream = docs.ask_stream(QUESTION)
        assert stream.answer is None
        pieces = list(stream)
        assert len(pieces) > 1 and stream.answer is not None
        assert "".join(pieces) == stream.answer.answer == REPLY
        assert stream.final_answer() is stream.answer
        assert stream.answer.timings["total_ms"] > 0


def test_live_stream_sends_tokens_then_a_correction(tmp_path: Path) -> None:
    unsupported = "The moon is made of green cheese [1]."
    with open_docs(tmp_path, unsupported, stream_mode="live") as docs:
        docs.ingest(write_folder(tmp_path / "docs"))
        stream = docs.ask_stream(QUESTION)
        pieces = list(stream)
        answer = stream.final_answer()
    assert "".join(pieces).startswith(unsupported)
    assert CORRECTION in pieces[-1] and answer.extractive
    assert COFFEE in answer.answer


def test_quoted_answers_stream_whole(tmp_path: Path) -> None:
    with open_docs(tmp_path, answer_mode="quote", fallback_judge="off") as docs:
        docs.ingest(write_folder(tmp_path / "docs"))
        stream = docs.ask_stream(QUESTION)
        text = "".join(stream)
        assert stream.answer is not None and stream.answer.extractive
        assert text == stream.answer.answer and "200 brewing cycles" in text
        abstained = docs.ask("Which moons orbit Neptune?")
        assert abstained.abstained and not abstained.citations


class SlowGenerator(ScriptedGenerator):
    """Replies one word every few milliseconds, counting the words it produced."""

    def __init__(self, words: int) -> None:
        super().__init__([" ".join(["word"] * words)])
        self.produced = 0

    def stream(self, messages: Sequence[Message], *, max_new_tokens: int) -> Iterator[str]:
        for piece in super().stream(messages, max_new_tokens=max_new_tokens):
            time.sleep(0.005)
            self.produced += 1
            yield piece


def test_closing_a_stream_or_the_documents_stops_the_generation(tmp_path: Path) -> None:
    slow = SlowGenerator(words=2000)
    with open_docs(tmp_path, stream_mode="live") as first:
        first.ingest(write_folder(tmp_path / "docs"))
    docs = rag.Documents(first.settings, embedder=HashEmbedder(), llm=slow)
    with docs.ask_stream(QUESTION) as stream:
        assert next(stream) == "word "
    assert list(stream) == [] and stream.answer is None
    unread = docs.ask_stream(QUESTION)
    assert next(unread) == "word "
    docs.close()  # stops the unread stream's generation, then closes
    assert slow.produced < 1000
    with pytest.raises(rag.DocumentsClosedError):
        docs.ask_stream(QUESTION).final_answer()


def test_async_twins_run_side_by_side(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "docs")

    async def main() -> None:
        async with open_docs(tmp_path) as docs:
            await docs.aingest(folder)
            (folder / "garden.txt").write_text("Water the tomatoes every morning in summer.\n")

            async def streamed() -> tuple[str, rag.Answer]:
                stream = docs.aask_stream(QUESTION)
                text = "".join([piece async for piece in stream])
                return text, await stream.final_answer()

            report, hits, answers, (text, final) = await asyncio.gather(
                docs.aingest(folder),  # into the open collection, while it is searched
                docs.asearch("descale brewing cycles", k=1),
                asyncio.gather(*(docs.aask(QUESTION) for _ in range(3))),
                streamed(),
            )
            assert report.ok and [Path(p).name for p in report.added] == ["garden.txt"]
            assert hits[0].chunk.source.endswith("coffee.md")
            assert [a.answer for a in answers] == [REPLY] * 3
            assert text == final.answer == REPLY
            assert (await docs.asearch("tomatoes morning", k=1))[0].chunk.source.endswith(
                "garden.txt"
            )
        with pytest.raises(rag.DocumentsClosedError):
            await docs.aask(QUESTION)

    asyncio.run(main())


def test_bad_settings_and_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(
        rag.ConfigError, match=r"unknown setting 'data_dri' \(did you mean 'data_dir'"
    ):
        rag.open(data_dri=tmp_path)
    with pytest.raises(rag.ConfigError, match="chunk_size"):
        rag.open(data_dir=tmp_path, chunk_size=1)
    with pytest.raises(rag.ConfigError, match="collection"):
        rag.open("a/b", data_dir=tmp_path)
    with pytest.raises(rag.ConfigError, match="chunk_overlap"):
        rag.open(settings=Settings(data_dir=tmp_path), chunk_overlap=500)
    merged = rag.open("notes", settings=Settings(data_dir=tmp_path), top_k=3)
    assert (merged.collection, merged.settings.top_k, merged.settings.data_dir) == (
        "notes",
        3,
        tmp_path,
    )
    merged.close()

    with open_docs(tmp_path) as docs:
        with pytest.raises(rag.CollectionNotFoundError, match="ingest documents into it first"):
            docs.search("anything")
        with pytest.raises(rag.InvalidInputError, match="empty"):
            docs.ask("   ")
        with pytest.raises(rag.InvalidInputError, match="no such file or folder"):
            docs.ingest(tmp_path / "nowhere")
        docs.ingest(write_folder(tmp_path / "docs"))
        with pytest.raises(rag.InvalidInputError, match="k must be between 1 and 100"):
            docs.search("descale", k=0)


# --- the examples of docs/python-api.md -------------------------------------------------------


def doc_examples() -> list[str]:
    """The page's Python blocks, in order: the API, async, LangChain in process, over HTTP."""
    return re.findall(r"```python\n(.*?)```", DOC_EXAMPLES.read_text(), flags=re.DOTALL)


def test_the_docs_have_the_four_examples() -> None:
    examples = doc_examples()
    assert len(examples) == 4
    assert all(len(e.strip().splitlines()) <= 25 for e in examples)
    assert "url=" in examples[3] and "url=" not in "".join(examples[:3])


@pytest.mark.real_models
def test_the_docs_examples_run_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(PROJECT / "samples", tmp_path / "samples")
    monkeypatch.chdir(tmp_path)  # data="data" and "samples" are here; no .env
    monkeypatch.setenv("RAG_MODEL_CACHE_DIR", str(MODEL_CACHE))  # converted weights, once
    for example in doc_examples()[:3]:
        exec(compile(example, str(DOC_EXAMPLES), "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert "4 added" in out
    assert "coffee-machine-manual.md" in out
    assert "Skylark 4.2 Release Notes" in out
