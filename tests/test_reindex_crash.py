"""kill -9 at each file operation of an embedded-store rebuild's switch: the collection then
opens with its old or its new content, never neither, and the next rebuild and sync work."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from ingest.runs import reindex, run_ingest
from rag.catalog import list_collections, open_collection
from rag.config import Settings
from tests.fakes import HashEmbedder

PROJECT = Path(__file__).resolve().parents[1]

# Runs a rebuild and kills itself with SIGKILL just before the Nth file operation (rename,
# replace, unlink, rmtree) from the moment the switch starts; prints how many it saw.
REBUILD = textwrap.dedent(
    """
    import os, shutil, signal, sys
    from pathlib import Path
    from ingest.runs import reindex
    from rag.config import Settings
    from rag.store.edge import EdgeCollections
    from tests.fakes import HashEmbedder

    data, kill_at = Path(sys.argv[1]), int(sys.argv[2])
    seen = 0
    armed = False
    inside = 0  # the unlinks of an rmtree are counted as that one operation

    def killing(fn):
        def wrapper(*args, **kwargs):
            global seen, inside
            if armed and not inside:
                if seen == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                seen += 1
            inside += 1
            try:
                return fn(*args, **kwargs)
            finally:
                inside -= 1
        return wrapper

    for module, name in ((os, "rename"), (os, "replace"), (os, "unlink"), (shutil, "rmtree")):
        setattr(module, name, killing(getattr(module, name)))
    swap = EdgeCollections.swap

    def armed_swap(self, name, built):
        global armed
        armed = True
        swap(self, name, built)

    EdgeCollections.swap = armed_swap
    settings = Settings(data_dir=data, chunk_size=32, chunk_overlap=4)
    reindex(settings, HashEmbedder(), collection="team")
    print(seen)
    """
)


def rebuild(data: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", REBUILD, str(data), str(kill_at)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ids_of(settings: Settings, collection: str) -> set[str]:
    store = open_collection(settings, HashEmbedder(), collection=collection)
    try:
        return store.point_ids()
    finally:
        store.close()


def test_kill_during_the_switch_leaves_the_old_or_the_new_collection(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"{i}.txt").write_text(f"lantern {i} words " * 40)
    old = Settings(data_dir=tmp_path / "probe", chunk_size=48, chunk_overlap=4)
    new = old.model_copy(update={"chunk_size": 32})
    run_ingest(old, [docs], collection="old", embedder=HashEmbedder())
    run_ingest(new, [docs], collection="new", embedder=HashEmbedder())
    old_ids, new_ids = ids_of(old, "old"), ids_of(new, "new")
    assert old_ids and new_ids and old_ids != new_ids

    kill_at, outcomes = 0, set()
    while True:
        data = tmp_path / f"data-{kill_at}"
        run_ingest(
            old.model_copy(update={"data_dir": data}),
            [docs],
            collection="team",
            embedder=HashEmbedder(),
        )
        child = rebuild(data, kill_at)
        if child.returncode == 0:  # every operation of the switch was passed
            assert int(child.stdout.strip()) == kill_at
            break
        assert child.returncode == -signal.SIGKILL, child.stderr
        after = new.model_copy(update={"data_dir": data})
        found = ids_of(after, "team")
        assert found in (old_ids, new_ids), f"killed before operation {kill_at}"
        outcomes.add("new" if found == new_ids else "old")
        assert list_collections(after) == ["team"]
        # The next rebuild works, and a sync afterwards finds store and folder in agreement.
        assert reindex(after, HashEmbedder(), collection="team").ok
        assert ids_of(after, "team") == new_ids
        report = run_ingest(after, [docs], collection="team", embedder=HashEmbedder())
        assert report.ok and ids_of(after, "team") == new_ids
        kill_at += 1
        assert kill_at < 12, "the switch does more file operations than expected"
    assert kill_at >= 2 and outcomes == {"old", "new"}
