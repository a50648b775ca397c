"""rag.display and ingest.source_names: sources named relative to the folder they were
ingested from, for collections ingested before, from their recorded state."""

from __future__ import annotations

from pathlib import Path

from ingest.source_names import names_for
from ingest.state import SyncState
from ingest.sync import FileRecord
from rag.catalog import state_path
from rag.config import Settings
from rag.display import SourceNames, common_folder, source_names


def test_a_source_is_named_relative_to_the_deepest_root_that_holds_it() -> None:
    names = SourceNames(["/srv", "/srv/docs/", "/"])
    assert names("/srv/docs/guides/setup.md") == "guides/setup.md"
    assert names("/srv/other.md") == "other.md"
    assert names("/srv/docsearch/x.md") == "docsearch/x.md"  # a root is a folder, not a prefix
    assert names("/home/me/notes/todo.txt") == "todo.txt"  # under none: the file name
    assert names("relative.txt") == "relative.txt"
    assert SourceNames()("/a/b/c.pdf") == "c.pdf"


def test_the_common_folder_of_a_collection() -> None:
    assert common_folder(["/home/me/docs/a/x.md", "/home/me/docs/b/y.md"]) == "/home/me/docs"
    assert common_folder(["/home/me/docs/a/x.md"]) == "/home/me/docs/a"
    assert common_folder(["/home/x.md", "/srv/y.md"]) is None  # only '/' in common
    assert common_folder([]) is None


def test_uploads_ingest_roots_and_the_collections_folder(tmp_path: Path) -> None:
    root = tmp_path / "allowed"
    settings = Settings(data_dir=tmp_path / "data", ingest_roots=[root])
    uploads = (settings.data_dir / "uploads" / "default").resolve()
    ingested = [
        f"{uploads}/report.pdf",  # uploads live apart: they do not widen the common folder
        "/home/me/docs/a/x.md",
        "/home/me/docs/b/y.md",
    ]
    names = source_names(settings, "default", ingested)
    assert names(f"{uploads}/report.pdf") == "report.pdf"
    assert names("/home/me/docs/a/x.md") == "a/x.md"
    assert names(f"{root.resolve()}/team/plan.md") == "team/plan.md"
    assert names("/opt/elsewhere/z.txt") == "z.txt"


def _record(source: str) -> FileRecord:
    return FileRecord(source, 1, 1, "0" * 64, ("id",), "sig")


def test_the_api_reads_an_existing_collections_state_and_notices_a_new_ingestion(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    state = SyncState(state_path(settings, "default"))
    try:
        state.commit([_record("/home/me/docs/a/x.md")])
        assert names_for(settings, "default")("/home/me/docs/a/x.md") == "x.md"
        state.commit([_record("/home/me/docs/b/y.md")])  # the collection grew a folder
        assert names_for(settings, "default")("/home/me/docs/a/x.md") == "a/x.md"
    finally:
        state.close()
    assert names_for(settings, "other")("/home/me/docs/a/x.md") == "x.md"  # no state: the name
