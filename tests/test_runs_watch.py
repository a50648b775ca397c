"""`rag ingest --watch`: the folder is kept in sync as files come and go."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import pytest

from ingest.pipeline import IngestReport
from ingest.runs import watch_ingest
from rag.config import Settings
from tests.conftest import MODEL_CACHE

pytestmark = pytest.mark.real_models


def next_report(reports: queue.Queue[IngestReport], want: str) -> IngestReport:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        report = reports.get(timeout=60)
        if getattr(report, want):
            return report
    raise AssertionError(f"no report with {want}")


def test_watch_adds_and_deletes_as_files_change(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "first.md").write_text("# First\n\nThe first note is about lanterns.\n")
    settings = Settings(data_dir=tmp_path / "data", model_cache_dir=MODEL_CACHE)
    reports: queue.Queue[IngestReport] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(
        target=watch_ingest,
        args=(settings, [docs]),
        kwargs={"on_report": reports.put, "stop": stop},
    )
    thread.start()
    try:
        assert [Path(p).name for p in next_report(reports, "added").added] == ["first.md"]
        (docs / "second.md").write_text("# Second\n\nThe second note is about orchards.\n")
        assert [Path(p).name for p in next_report(reports, "added").added] == ["second.md"]
        (docs / "first.md").unlink()
        assert [Path(p).name for p in next_report(reports, "deleted").deleted] == ["first.md"]
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
