from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rag
from ingest.runs import list_documents, run_ingest
from rag.cli import EXIT_FILES_FAILED, EXIT_USAGE, app
from rag.config import Settings
from tests.conftest import MODEL_CACHE
from tests.documents import write_fixture_folder
from tests.fakes import HashEmbedder


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAG_MODEL_CACHE_DIR", str(MODEL_CACHE))
    monkeypatch.setenv("RAG_LLM_MAX_NEW_TOKENS", "32")
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), terminal_width=80)
    return result.exit_code, result.stdout, result.stderr


def test_version() -> None:
    code, out, _ = run("--version")
    assert code == 0 and out == f"rag {rag.__version__}\n"


def test_help_prints_as_written() -> None:
    code, out, _ = run("--help")
    assert code == 0 and "Commands:\n" in out
    # The command list: one whole summary line per command, brackets kept.
    listed = out.split("Commands:\n", 1)[1].splitlines()
    names = [line.split()[0] for line in listed if line.strip()]
    assert names == [
        "ingest", "ask", "search", "serve", "worker", "reindex", "collections", "eval", "explore"
    ]  # fmt: skip
    assert "  ask          Answer a question with [n] citations, or abstain.\n" in out

    # A docstring's paragraphs are reflowed, not broken where the source lines end.
    code, out, _ = run("ingest", "--help")
    assert code == 0
    assert "  still ingested), 2 for bad arguments, 3 for other errors.\n" in out


def test_missing_path_is_named(cli_env: Path) -> None:
    code, _, err = run("ingest", str(cli_env / "nowhere"))
    assert code == EXIT_USAGE and "nowhere: no such file or folder" in err
    # Paths are printed as they are, brackets included.
    code, _, err = run("ingest", str(cli_env / "notes[n]"))
    assert code == EXIT_USAGE and "notes[n]: no such file or folder" in err


def test_a_missing_folder_with_stored_documents_is_named_and_kept(cli_env: Path) -> None:
    docs = cli_env / "docs"
    (docs / "a.txt").parent.mkdir()
    (docs / "a.txt").write_text("alpha words " * 20)
    settings = Settings(data_dir=cli_env / "data")
    run_ingest(settings, [docs], embedder=HashEmbedder())
    shutil.rmtree(docs)
    code, _, err = run("ingest", str(docs))  # refused before any model loads
    said = " ".join(err.split())
    assert code == EXIT_USAGE
    assert f"{docs}: no such file or folder, but 1 document ingested from it is stored" in said
    assert "--allow-empty" in said
    assert [d.source for d in list_documents(settings, "default")] == [str(docs / "a.txt")]


@pytest.mark.real_models
def test_an_emptied_folder_is_deleted_only_when_asked(cli_env: Path) -> None:
    docs = cli_env / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("alpha words " * 20)
    (docs / "b.md").write_text("# Beta\n\nbeta words " * 20)
    code, _, err = run("ingest", str(docs))
    assert code == 0, err
    (docs / "b.md").unlink()
    code, out, err = run("ingest", str(docs), "--json")  # one file gone: an ordinary sync
    assert code == 0 and [Path(p).name for p in json.loads(out)["deleted"]] == ["b.md"]
    (docs / "a.txt").unlink()
    for extra in ([], ["--dry-run"]):
        code, _, err = run("ingest", str(docs), *extra)
        assert code == EXIT_USAGE, err
        assert f"{docs}: no supported documents in it now" in " ".join(err.split())
    code, out, err = run("ingest", str(docs), "--allow-empty", "--json")
    assert code == 0, err
    assert [Path(p).name for p in json.loads(out)["deleted"]] == ["a.txt"]


@pytest.mark.parametrize(("question", "needle"), [("   ", "empty"), ("x" * 2001, "limit is 2000")])
def test_bad_questions_are_refused_before_any_model_loads(
    cli_env: Path, question: str, needle: str
) -> None:
    for command in ("ask", "search"):
        code, _, err = run(command, question)
        assert code == EXIT_USAGE and needle in err and "question" in err


def test_invalid_collection_name(cli_env: Path) -> None:
    code, _, err = run("ask", "hi", "--collection", "a/b")
    assert code == EXIT_USAGE and "collection" in err


@pytest.mark.real_models  # the embedder reads the real model's files for its dimension
def test_asking_an_empty_store_says_what_to_do(cli_env: Path) -> None:
    code, _, err = run("search", "hello")
    assert code != 0 and "ingest documents into it first" in err


@pytest.mark.real_models
def test_ingest_ask_search_and_bad_files_through_the_cli(cli_env: Path) -> None:
    docs = write_fixture_folder(cli_env / "docs")
    empty = cli_env / "empty"
    empty.mkdir()
    code, _, err = run("ingest", str(empty))
    assert code == EXIT_USAGE and "no supported documents found in" in err and "empty" in err

    code, out, err = run("ingest", str(docs), "--json")
    assert code == 0, err
    assert len(json.loads(out)["added"]) == 6

    code, _, err = run("ingest", str(docs))
    assert code == 0 and "Nothing changed" in err

    odd = cli_env / "notes.xyz"
    odd.write_text("text")
    code, _, err = run("ingest", str(odd))
    assert code == EXIT_FILES_FAILED and "notes.xyz" in err and "unsupported" in err.lower()

    code, out, err = run("ask", "How many apple trees grow in the orchard?", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert {"answer", "citations", "abstained"} <= answer.keys()
    assert "orchard.docx" in {Path(c["source"]).name for c in answer["citations"]}
    # Files are shown relative to the folder they were ingested from; JSON keeps the full path.
    assert "orchard.docx" in {c["display_source"] for c in answer["citations"]}
    code, out, err = run("ask", "How many apple trees grow in the orchard?")
    assert code == 0 and "] orchard.docx" in out and str(docs.resolve()) not in out
    # Quoted as the local model's default: no model answer was written, so none was refused.
    assert "(quoted from your documents)" in err and "not supported" not in err

    code, out, _ = run("search", "Lighthouse beam nautical miles", "--k", "2", "--json")
    hits = json.loads(out)
    assert code == 0 and len(hits) == 2 and Path(hits[0]["source"]).name == "lighthouse.pdf"
    assert hits[0]["display_source"] == "lighthouse.pdf"
    code, out, _ = run("search", "Lighthouse beam nautical miles", "--k", "2")
    assert code == 0 and " lighthouse.pdf\n" in out and str(docs.resolve()) not in out

    code, out, _ = run("collections", "list")
    assert out.split() == ["default"]

    # A pattern excludes a file from the folder's sync: it is dropped from the collection.
    code, out, err = run("ingest", str(docs), "--exclude", "lighthouse.*", "--dry-run")
    assert code == 0 and f"delete   {docs.resolve() / 'lighthouse.pdf'}" in out, err
    code, out, err = run("ingest", str(docs), "--exclude", "lighthouse.*", "--json")
    assert code == 0 and [Path(p).name for p in json.loads(out)["deleted"]] == ["lighthouse.pdf"]
    code, out, _ = run("search", "Lighthouse beam nautical miles", "--k", "5", "--json")
    assert code == 0 and "lighthouse.pdf" not in {Path(h["source"]).name for h in json.loads(out)}
