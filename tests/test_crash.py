"""kill -9 at several moments of a real ingestion; the next run must leave store == folder."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.loaders import load_document
from rag.catalog import open_collection, state_path
from rag.chunking import TokenChunker
from rag.config import Settings
from rag.embedding.sentence_transformers import SentenceTransformerEmbedder
from tests.conftest import MODEL_CACHE

pytestmark = pytest.mark.real_models

WORDS = "harbour lantern orchard quarry meadow glacier canyon prairie delta lagoon".split()


def write_corpus(folder: Path, files: int, start: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + files):
        topic = WORDS[i % len(WORDS)]
        paragraphs = [
            f"Section {j} of note {i} about the {topic}. The {topic} record {i}-{j} lists "
            f"{(i * 7 + j) % 97} observations made by team {j} in year {1900 + i + j}."
            for j in range(12)
        ]
        (folder / f"note-{i:03d}.md").write_text(f"# Note {i}\n\n" + "\n\n".join(paragraphs))


def expected_ids(
    folder: Path, embedder: SentenceTransformerEmbedder, settings: Settings
) -> set[str]:
    chunker = TokenChunker(
        embedder.count_tokens,
        max_tokens=embedder.max_tokens,
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
    )
    return {
        c.id for path in sorted(folder.glob("*.md")) for c in chunker.chunk(load_document(path))
    }


def committed_files(state: Path) -> int:
    if not state.is_file():
        return 0
    try:
        db = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1)
        try:
            return int(db.execute("SELECT count(*) FROM files").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def start_ingest(folder: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "ingest", str(folder)],
            env={**env, "PYTHONFAULTHANDLER": "1"},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def kill_when(
    proc: subprocess.Popen[bytes], state: Path, files_at_least: int, extra: float, log: Path
) -> None:
    deadline = time.monotonic() + 120
    while committed_files(state) < files_at_least and proc.poll() is None:
        if time.monotonic() > deadline:
            # SIGABRT makes faulthandler print every thread's stack: where did it stall?
            os.kill(proc.pid, signal.SIGABRT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            pytest.fail(f"ingestion made no progress in 120 s; its stderr:\n{log.read_text()}")
        time.sleep(0.05)
    time.sleep(extra)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_kill_9_at_any_moment_then_rerun_mirrors_the_folder(
    tmp_path: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    folder = tmp_path / "docs"
    write_corpus(folder, 24)
    data = tmp_path / "data"
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(data),
        "RAG_MODEL_CACHE_DIR": str(MODEL_CACHE),
        "RAG_INGEST_BATCH_CHUNKS": "8",  # many small commits: many moments to die between
        "RAG_LOG_LEVEL": "WARNING",
    }
    settings = Settings(data_dir=data)
    state = state_path(settings, settings.collection)

    log = tmp_path / "ingest.stderr"

    # 1) Killed before anything was written, while the models load.
    proc = start_ingest(folder, env, log)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # 2) Killed mid-batch, right after the first commits.
    kill_when(start_ingest(folder, env, log), state, files_at_least=1, extra=0.3, log=log)
    # 3) The folder changes between crashes: an edit, a delete, a rename, new files.
    (folder / "note-000.md").write_text("# Note 0\n\nRewritten entirely: the lantern is blue.")
    (folder / "note-001.md").unlink()
    (folder / "note-002.md").rename(folder / "renamed-002.md")
    write_corpus(folder, 4, start=100)
    kill_when(start_ingest(folder, env, log), state, files_at_least=5, extra=0.7, log=log)
    # 4) Killed late in the run.
    kill_when(start_ingest(folder, env, log), state, files_at_least=20, extra=0.2, log=log)

    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "ingest", str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr

    store = open_collection(settings, real_embedder)
    try:
        stored = store.point_ids()
        count = store.count()
    finally:
        store.close()
    wanted = expected_ids(folder, real_embedder, settings)
    assert stored == wanted  # nothing missing, no orphans
    assert count == len(wanted)  # no duplicates
    assert committed_files(state) == len(list(folder.glob("*.md")))
