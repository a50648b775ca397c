"""bench/qa/check_devset.py on a small HTML folder: gold pages, excluded folders, and the
unanswerable-term scan (corpus-wide terms are not reported, options match whole)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "qa" / "check_devset.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_devset", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_devset = load_script()


def page(body: str) -> str:
    return f"<html><head><style>p {{}}</style></head><body><p>{body}</p></body></html>"


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """Ten pages that all mention Frobnicator (the corpus's subject); one mentions Zork."""
    root = tmp_path / "frob-docs"
    for i in range(10):
        (root / "guide").mkdir(parents=True, exist_ok=True)
        (root / "guide" / f"p{i}.html").write_text(page(f"Frobnicator page {i}."))
    (root / "guide" / "p0.html").write_text(
        page("Frobnicator: frob --comment-lines marks lines. Use --depth 3. Zork is unrelated.")
    )
    (root / "_sources").mkdir()
    (root / "_sources" / "p0.html").write_text(page("Frobnicator --depth 3"))
    return root


def write_set(path: Path, answerable: list[dict[str, object]], unanswerable: list[str]) -> Path:
    rows = list(answerable)
    # Fillers to reach the minimum size: answered by guide/p1.html.
    rows += [
        {"question": f"filler {i}?", "gold_sources": ["guide/p1.html"], "answers": ["page 1"]}
        for i in range(check_devset.MIN_QUESTIONS)
    ]
    rows += [{"question": q, "gold_sources": [], "answers": []} for q in unanswerable]
    with path.open("w", encoding="utf-8") as f:
        for n, row in enumerate(rows, 1):
            unans = not row["answers"]
            f.write(json.dumps({"id": f"t-{n:03d}", **row, "unanswerable": unans}) + "\n")
    return path


FILLER_UNANSWERABLE = [f"How do I configure Acme{i} for this?" for i in range(8)]


def test_a_set_whose_gold_pages_hold_the_answers_passes(
    docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    q: dict[str, object] = {
        "question": "How deep?",
        "gold_sources": ["guide/p0.html"],
        "answers": ["--depth 3"],
    }
    devset = write_set(tmp_path / "set.jsonl", [q], FILLER_UNANSWERABLE)
    assert check_devset.main([str(docs), "--devset", str(devset)]) == 0
    assert "OK: all checks passed" in capsys.readouterr().out


def test_a_gold_page_without_the_answer_fails(
    docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    q: dict[str, object] = {
        "question": "How deep?",
        "gold_sources": ["guide/p2.html"],
        "answers": ["--depth 3"],
    }
    devset = write_set(tmp_path / "set.jsonl", [q], FILLER_UNANSWERABLE)
    assert check_devset.main([str(docs), "--devset", str(devset)]) == 1
    assert "none of ['--depth 3'] found in gold source guide/p2.html" in capsys.readouterr().out


def test_gold_pages_in_an_excluded_folder_are_refused(
    docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    q: dict[str, object] = {
        "question": "How deep?",
        "gold_sources": ["_sources/p0.html"],
        "answers": ["--depth 3"],
    }
    devset = write_set(tmp_path / "set.jsonl", [q], FILLER_UNANSWERABLE)
    assert check_devset.main([str(docs), "--devset", str(devset)]) == 1
    assert "must be a relative .html path outside _sources" in capsys.readouterr().out
    # With another folder excluded instead, _sources is an ordinary folder.
    args = [str(docs), "--devset", str(devset), "--exclude", "build"]
    assert check_devset.main(args) == 0


def test_the_unanswerable_scan_skips_corpus_wide_terms_and_matches_options_whole(
    docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = [
        "Does the Frobnicator run on Windows?",  # Frobnicator: in every page
        "How do I play Zork with it?",  # Zork: in one page
        "What does frob --comment do?",  # only --comment-lines is in the docs
    ]
    devset = write_set(tmp_path / "set.jsonl", [], questions + FILLER_UNANSWERABLE[:5])
    assert check_devset.main([str(docs), "--devset", str(devset), "-v"]) == 0
    out = capsys.readouterr().out
    assert "corpus-wide terms, not reported: ['Frobnicator']" in out
    assert "term 'Zork' occurs in 1 page(s), e.g. guide/p0.html" in out
    assert "--comment" in check_devset.key_terms(questions[2])
    warned = [line for line in out.splitlines() if line.startswith("WARN")]
    assert not any("Frobnicator" in line or "--comment" in line for line in warned)


def test_an_unknown_docs_folder_needs_a_devset(
    docs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_devset.main([str(docs)]) == 1
    out = capsys.readouterr().out
    assert "no default dev set for docs folder 'frob-docs'; give --devset" in out


def test_a_smaller_set_passes_only_with_its_own_minimum(
    docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {"question": f"q {i}?", "gold_sources": ["guide/p1.html"], "answers": ["page 1"]}
        for i in range(40)
    ] + [{"question": q, "gold_sources": [], "answers": []} for q in FILLER_UNANSWERABLE]
    devset = tmp_path / "small.jsonl"
    with devset.open("w", encoding="utf-8") as f:
        for n, row in enumerate(rows, 1):
            f.write(json.dumps({"id": f"s-{n:03d}", **row, "unanswerable": not row["answers"]}))
            f.write("\n")
    assert check_devset.main([str(docs), "--devset", str(devset)]) == 1
    assert "only 48 valid questions (< 60)" in capsys.readouterr().out
    assert check_devset.main([str(docs), "--devset", str(devset), "--min-questions", "48"]) == 0
