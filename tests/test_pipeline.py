from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, cast

import pytest

from ingest.pipeline import IngestPipeline, NoProgress, write_chunks
from ingest.runs import plan_ingest, run_ingest
from ingest.state import SyncState
from ingest.sync import excluded
from rag.catalog import open_collection, state_path
from rag.chunking import TokenChunker
from rag.config import Settings
from rag.errors import InvalidInputError, PermissionDeniedError, StoreLockedError
from rag.store.base import CollectionInfo, SearchQuery, VectorStore
from rag.store.factory import open_store
from tests.documents import write_fixture_folder
from tests.fakes import HashEmbedder, make_hit
from tests.test_loaders_docx import zip_bomb


@pytest.fixture
def store(settings: Settings, embedder: HashEmbedder) -> Iterator[VectorStore]:
    opened = open_store(
        settings, CollectionInfo(embedder.model_name, embedder.dimension), create=True
    )
    yield opened
    opened.close()


@pytest.fixture
def pipeline(
    settings: Settings, embedder: HashEmbedder, store: VectorStore
) -> Iterator[IngestPipeline]:
    state = SyncState(state_path(settings, store.collection))
    yield small_batches(embedder, store, state)
    state.close()


def small_batches(embedder: HashEmbedder, store: VectorStore, state: SyncState) -> IngestPipeline:
    """A pipeline that cuts small chunks and writes them a few at a time."""
    chunker = TokenChunker(
        embedder.count_tokens, max_tokens=embedder.max_tokens, chunk_size=48, chunk_overlap=8
    )
    return IngestPipeline(
        embedder=embedder,
        store=store,
        state=state,
        chunker=chunker,
        max_file_bytes=10_000,
        batch_chunks=4,
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def sources(store: VectorStore, embedder: HashEmbedder) -> set[str]:
    hits = store.search(SearchQuery("alpha beta gamma delta", embedder.embed_query("alpha"), k=100))
    return {h.chunk.source for h in hits}


def test_add_skip_change_delete(
    tmp_path: Path, pipeline: IngestPipeline, store: VectorStore, embedder: HashEmbedder
) -> None:
    docs = tmp_path / "docs"
    a = write(docs / "a.md", "# Alpha\n\nalpha words here. " * 20)
    b = write(docs / "sub" / "b.txt", "beta words here. " * 20)
    first = pipeline.run([docs])
    assert sorted(first.added) == sorted([str(a), str(b)]) and first.ok
    count = store.count()
    assert count == first.chunks_written > 2

    again = pipeline.run([docs])
    assert not again.changed and len(again.unchanged) == 2 and store.count() == count

    write(a, "# Alpha\n\ngamma replaced the text. " * 5)
    changed = pipeline.run([docs])
    assert changed.replaced == [str(a)]
    texts = [
        h.chunk.text
        for h in store.search(
            SearchQuery("alpha words gamma", embedder.embed_query("alpha words gamma"), k=100)
        )
    ]
    assert any("gamma replaced" in t for t in texts)
    assert not any("alpha words" in t for t in texts)  # the old version is gone

    b.unlink()
    gone = pipeline.run([docs])
    assert gone.deleted == [str(b)]
    assert sources(store, embedder) == {str(a)}


def test_touched_but_unchanged_file_is_not_reembedded(
    tmp_path: Path, pipeline: IngestPipeline, embedder: HashEmbedder
) -> None:
    f = write(tmp_path / "docs" / "a.txt", "alpha " * 50)
    pipeline.run([tmp_path / "docs"])
    calls = len(embedder.calls)
    os.utime(f, ns=(1, 1))
    report = pipeline.run([tmp_path / "docs"])
    assert report.unchanged == [str(f)] and len(embedder.calls) == calls


def test_bad_files_fail_alone(tmp_path: Path, pipeline: IngestPipeline, store: VectorStore) -> None:
    docs = tmp_path / "docs"
    good = write(docs / "good.txt", "alpha good text " * 10)
    (docs / "empty.txt").write_bytes(b"")
    (docs / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (docs / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    write(docs / "huge.txt", "alpha " * 5000)  # over max_file_bytes=10_000
    (docs / "loop.txt").symlink_to(docs / "loop.txt")
    (docs / "image.png").write_bytes(b"\x89PNG")  # unsupported in a folder: not a document
    report = pipeline.run([docs])
    assert report.added == [str(good)]
    reasons = {Path(f.path).name: f.reason for f in report.failed}
    assert set(reasons) == {"empty.txt", "binary.txt", "latin1.txt", "huge.txt", "loop.txt"}
    assert "over the limit" in reasons["huge.txt"]
    assert "UTF-8" in reasons["latin1.txt"]
    assert not report.ok and store.count() > 0


def test_named_unsupported_file_is_an_error(tmp_path: Path, pipeline: IngestPipeline) -> None:
    odd = write(tmp_path / "notes.xyz", "text")
    report = pipeline.run([odd])
    assert [f.path for f in report.failed] == [str(odd)]
    assert "unsupported" in report.failed[0].reason.lower()


def test_empty_folder_and_missing_path(tmp_path: Path, pipeline: IngestPipeline) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match=r"no supported documents found in .*empty"):
        pipeline.run([tmp_path / "empty"])
    with pytest.raises(InvalidInputError, match="missing: no such file"):
        pipeline.run([tmp_path / "missing"])


def test_crash_before_commit_leaves_no_orphans(
    tmp_path: Path,
    settings: Settings,
    pipeline: IngestPipeline,
    store: VectorStore,
    embedder: HashEmbedder,
) -> None:
    docs = tmp_path / "docs"
    write(docs / "a.txt", "alpha " * 40)
    state = SyncState(state_path(settings, store.collection))
    # Simulate a crash after the upsert of a file that was then deleted: ids are pending only.
    from rag.chunking import chunk_id
    from rag.types import Chunk

    orphan = Chunk(
        id=chunk_id("/x/gone.txt", "delta", 0), source="/x/gone.txt", title="g", text="delta"
    )
    state.mark_pending({orphan.source: [orphan.id]})
    store.upsert([orphan], embedder.embed_documents(["delta"]))
    state.close()
    pipeline.run([docs])
    assert "/x/gone.txt" not in sources(store, embedder)


def test_moved_file_is_repointed_without_reembedding(
    tmp_path: Path, pipeline: IngestPipeline, store: VectorStore, embedder: HashEmbedder
) -> None:
    docs = tmp_path / "docs"
    old = write(docs / "a.txt", "alpha moved words. " * 30)
    write(docs / "b.txt", "beta stays here. " * 5)
    pipeline.run([docs])
    before = store.point_ids()
    calls = len(embedder.calls)
    new = docs / "sub" / "renamed.txt"
    new.parent.mkdir()
    old.rename(new)
    report = pipeline.run([docs])
    assert report.moved == [f"{old} -> {new}"] and not report.added and not report.deleted
    assert len(embedder.calls) == calls  # nothing embedded
    after = store.point_ids()
    assert len(after) == len(before) and after != before
    assert sources(store, embedder) == {str(new), str(docs / "b.txt")}
    hit = store.search(SearchQuery("alpha moved", embedder.embed_query("alpha moved"), k=1))[0]
    assert hit.chunk.title == "renamed"  # a title taken from the file name follows it


def test_plan_is_a_dry_run(tmp_path: Path, pipeline: IngestPipeline, store: VectorStore) -> None:
    docs = tmp_path / "docs"
    a = write(docs / "a.txt", "alpha " * 30)
    b = write(docs / "b.txt", "beta " * 30)
    pipeline.run([docs])
    ids = store.point_ids()
    write(a, "gamma " * 30)
    b.rename(docs / "c.txt")
    write(docs / "d.txt", "delta " * 30)
    plan = pipeline.plan([docs])
    assert [c.file.source for c in plan.add] == [str(docs / "d.txt")]
    assert [c.file.source for c in plan.replace] == [str(a)]
    assert [(m.old.source, m.new.file.source) for m in plan.move] == [(str(b), str(docs / "c.txt"))]
    assert plan.lines()[0].startswith("add")
    assert store.point_ids() == ids  # planning wrote nothing
    assert pipeline.plan([docs]).lines() == plan.lines()


def test_file_deleted_during_the_run_fails_alone(
    tmp_path: Path, pipeline: IngestPipeline, store: VectorStore
) -> None:
    docs = tmp_path / "docs"
    files = [write(docs / f"{n}.txt", f"{n} text alpha " * 10) for n in ("a", "b", "c")]
    plan = pipeline.plan([docs])
    files[1].unlink()  # gone after planning, before loading
    report = pipeline.apply(plan, NoProgress())
    assert report.added == [str(files[0]), str(files[2])]
    assert [Path(f.path).name for f in report.failed] == ["b.txt"]
    assert "No such file" in report.failed[0].reason or "not found" in report.failed[0].reason


def test_an_edit_re_embeds_only_the_chunks_that_changed(
    tmp_path: Path, pipeline: IngestPipeline, store: VectorStore, embedder: HashEmbedder
) -> None:
    docs = tmp_path / "docs"
    paragraphs = [f"paragraph {i} talks about topic{i} at length. " * 6 for i in range(8)]
    doc = write(docs / "long.md", "\n\n".join(paragraphs))
    first = pipeline.run([docs])
    assert first.chunks_written > 4 and first.chunks_reused == 0
    before = {c.id: v for c, v in store.fetch(list(store.point_ids()))}

    paragraphs[-1] = "an edited last paragraph about something else entirely. " * 6
    doc.write_text("\n\n".join(paragraphs))
    embedder.calls.clear()
    second = pipeline.run([docs])

    assert second.replaced == [str(doc)]
    assert 0 < sum(embedder.calls) < second.chunks_written  # only the edited part embedded
    assert second.chunks_reused == second.chunks_written - sum(embedder.calls)
    after = {c.id: (c, v) for c, v in store.fetch(list(store.point_ids()))}
    assert store.count() == len(after) == second.chunks_written
    for chunk_id, (chunk, vector) in after.items():  # every vector is the one of its text
        expected = embedder.embed_documents([chunk.embedding_text])[0]
        assert vector == pytest.approx(expected, abs=1e-6)
        if chunk_id in before:
            assert vector == pytest.approx(before[chunk_id], abs=1e-6)


def test_a_new_loader_version_rebuilds_every_file_but_re_embeds_only_changed_text(
    tmp_path: Path,
    pipeline: IngestPipeline,
    store: VectorStore,
    embedder: HashEmbedder,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = tmp_path / "docs"
    write(docs / "a.txt", "alpha words about the first topic. " * 20)
    write(docs / "b.md", "# Bee\n\n" + "beta words about the second topic. " * 20)
    first = pipeline.run([docs])
    before = {c.id: v for c, v in store.fetch(list(store.point_ids()))}

    monkeypatch.setattr("ingest.pipeline.LOADER_VERSION", "next")
    embedder.calls.clear()
    state = SyncState(state_path(settings, store.collection))
    try:
        upgraded = small_batches(embedder, store, state)
        assert upgraded.plan([docs]).lines() == [
            f"replace  {docs / name} (same content, stored under older settings)"
            for name in ("a.txt", "b.md")
        ]
        rebuilt = upgraded.run([docs])
    finally:
        state.close()
    assert sorted(rebuilt.replaced) == sorted(first.added)  # the loader may read them otherwise
    assert sum(embedder.calls) == 0 and rebuilt.chunks_reused == rebuilt.chunks_written
    after = {c.id: v for c, v in store.fetch(list(store.point_ids()))}
    assert after.keys() == before.keys()
    assert all(after[i] == pytest.approx(before[i], abs=1e-6) for i in before)
    assert pipeline.plan([docs]).replace  # the old pipeline's signature is now the stale one


def test_a_noop_rerun_answers_from_the_state_without_opening_the_store(
    settings: Settings, embedder: HashEmbedder, tmp_path: Path
) -> None:
    docs = write_fixture_folder(tmp_path / "docs")
    first = run_ingest(settings, [docs], embedder=embedder)
    assert len(first.added) == 6 and first.ok
    # The Edge store admits one opener: while this handle holds it, any run that opens it fails.
    held = open_collection(settings, embedder)
    try:
        again = run_ingest(settings, [docs], embedder=embedder)
        assert not again.changed and sorted(again.unchanged) == sorted(first.added)
        (docs / "new.txt").write_text("A new file must be written, so this run opens the store.")
        with pytest.raises(StoreLockedError):
            run_ingest(settings, [docs], embedder=embedder)
        # An interrupted run's uncommitted writes need the store to be cleaned up, too.
        (docs / "new.txt").unlink()
        state = SyncState(state_path(settings, settings.collection))
        state.mark_pending({"ghost.txt": [str(uuid.uuid4())]})
        state.close()
        with pytest.raises(StoreLockedError):
            run_ingest(settings, [docs], embedder=embedder)
    finally:
        held.close()
    recovered = run_ingest(settings, [docs], embedder=embedder)
    assert not recovered.changed and len(recovered.unchanged) == 6
    assert not SyncState.read_pending(state_path(settings, settings.collection))


def test_parsing_ahead_keeps_order_and_stays_within_its_bound() -> None:
    from ingest.pipeline import _prefetched

    started: list[int] = []

    def parse(n: int) -> int:
        started.append(n)
        return n * n

    results = _prefetched(parse, range(100), depth=4)
    assert [next(results) for _ in range(3)] == [0, 1, 4]
    # 3 consumed, 4 in flight at most: nothing further was parsed ahead.
    assert len(started) <= 3 + 4
    results.close()  # the consumer stops early: nothing more is parsed
    parsed = len(started)
    assert parsed <= 7 and list(_prefetched(parse, [], depth=4)) == []
    assert len(started) == parsed
    assert list(_prefetched(parse, range(10), depth=3)) == [n * n for n in range(10)]


def test_excluded_files_are_skipped_and_removed_once_a_pattern_matches(
    settings: Settings, embedder: HashEmbedder, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    page = write(docs / "guide.html", "<h1>Guide</h1><p>alpha words of the page.</p>")
    source = write(docs / "_sources" / "guide.rst.txt", "Guide\n=====\n\nalpha words again.")
    draft = write(docs / "drafts" / "plan.md", "# Plan\n\nbeta words of a draft.")
    kept = write(docs / "notes" / "drafts.md", "# Notes\n\ngamma words, not a draft.")
    log = write(docs / "deep" / "run.log.txt", "delta words of a log.")
    first = run_ingest(settings, [docs], embedder=embedder)
    assert len(first.added) == 5 and first.ok

    patterns = ["_sources", "drafts/*.md", "*.log.txt"]
    narrowed = settings.model_copy(update={"ingest_exclude": patterns})
    plan = plan_ingest(narrowed, [docs], embedder=embedder)  # the dry run agrees
    assert sorted(r.source for r in plan.delete) == sorted(map(str, [source, draft, log]))
    second = run_ingest(narrowed, [docs], embedder=embedder)
    assert sorted(second.deleted) == sorted(map(str, [source, draft, log]))
    assert sorted(second.unchanged) == sorted(map(str, [page, kept]))
    store = open_collection(settings, embedder)
    try:
        assert sources(store, embedder) == {str(page), str(kept)}
    finally:
        store.close()
    # A new folder that the patterns leave empty is an error that names them.
    write(tmp_path / "logs" / "a.log.txt", "epsilon words.")
    with pytest.raises(InvalidInputError, match=r"excluded: _sources, drafts/\*\.md"):
        run_ingest(narrowed, [tmp_path / "logs"], embedder=embedder)
    # A file named on its own is taken even when a pattern matches it.
    named = run_ingest(narrowed, [draft], embedder=embedder)
    assert named.added == [str(draft)]


@pytest.mark.parametrize(
    ("relative", "patterns", "expected"),
    [
        ("_sources/a/b.txt", ["_sources"], True),  # a name at any depth
        ("a/_sources", ["_sources"], True),
        ("a/b.log", ["*.log"], True),
        ("drafts/x.md", ["drafts/*.md"], True),  # with a slash: the relative path
        ("a/drafts/x.md", ["drafts/*.md"], False),
        ("build/html", ["/build/html/"], True),  # leading and trailing slashes ignored
        ("Sources/x.txt", ["sources"], False),  # case-sensitive
        ("a/b.md", [], False),
    ],
)
def test_exclude_patterns(relative: str, patterns: list[str], expected: bool) -> None:
    assert excluded(PurePosixPath(relative), patterns) is expected


def test_write_chunks_embeds_in_batches_and_reuses_stored_vectors(
    store: VectorStore, embedder: HashEmbedder
) -> None:
    chunks = [make_hit(f"chunk number {n} of seven", f"/w/{n}.txt").chunk for n in range(7)]
    seen: list[tuple[int, int]] = []
    written = write_chunks(
        store,
        embedder,
        chunks,
        batch_chunks=3,
        on_batch=lambda totals: seen.append((totals.chunks, totals.embedded)),
    )
    assert embedder.calls == [3, 3, 1] and seen == [(3, 3), (6, 6), (7, 7)]
    assert (written.chunks, written.embedded) == (7, 7) and store.count() == 7
    stored = {c.id: v for c, v in store.fetch([chunks[0].id, chunks[5].id])}
    embedder.calls.clear()
    again = write_chunks(store, embedder, chunks, stored=stored)  # one batch
    assert embedder.calls == [5] and (again.chunks, again.embedded) == (7, 5)
    assert store.count() == 7  # the same ids: rewritten, not duplicated


def test_an_emptied_or_missing_folder_keeps_its_documents_unless_asked(
    tmp_path: Path,
    settings: Settings,
    pipeline: IngestPipeline,
    store: VectorStore,
    embedder: HashEmbedder,
) -> None:
    docs, other = tmp_path / "docs", tmp_path / "other"
    a = write(docs / "a.txt", "alpha words here. " * 20)
    b = write(docs / "sub" / "b.md", "# Beta\n\nbeta words here. " * 20)
    c = write(other / "c.txt", "gamma words here. " * 20)
    pipeline.run([docs, other])
    b.unlink()  # some files gone: an ordinary sync deletes them
    assert pipeline.run([docs]).deleted == [str(b)]
    count = store.count()

    # An unmounted volume: the folder is still there, with no documents in it.
    a.unlink()
    (docs / "notes.xyz").write_text("not a document")
    emptied = rf"{docs}: no supported documents in it now, but 1 document ingested from it"
    with pytest.raises(InvalidInputError, match=emptied):
        pipeline.run([docs])
    with pytest.raises(InvalidInputError, match=emptied):
        pipeline.run([other, docs])  # one emptied folder among others: nothing is written
    assert store.count() == count and sources(store, embedder) == {str(a), str(c)}
    assert str(a) in SyncState.read_records(state_path(settings, store.collection))

    # A folder gone altogether (a mistyped mount point).
    shutil.rmtree(docs)
    with pytest.raises(InvalidInputError, match=rf"{docs}: no such file or folder, but 1 doc"):
        pipeline.run([docs])
    assert store.count() == count

    report = pipeline.run([docs], allow_empty=True)  # asked for: the deletion proceeds
    assert report.deleted == [str(a)] and sources(store, embedder) == {str(c)}
    with pytest.raises(InvalidInputError, match=r"docs: no such file or folder$"):
        pipeline.run([docs], allow_empty=True)  # nothing stored from it: a plain typo


def test_symlinked_files_follow_the_confining_roots(
    tmp_path: Path, pipeline: IngestPipeline, store: VectorStore, embedder: HashEmbedder
) -> None:
    root = tmp_path / "root"
    docs = root / "docs"
    a = write(docs / "a.txt", "alpha words here. " * 20)
    inside = write(root / "shared" / "b.txt", "beta words inside the root. " * 20)
    secret = write(tmp_path / "secret" / "s.txt", "delta secret words. " * 20)
    (docs / "inside.txt").symlink_to(inside)
    (docs / "leak.txt").symlink_to(secret)
    (docs / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")

    # The CLI's way: symlinked files are followed wherever they point.
    first = pipeline.run([docs])
    assert first.added == [str(a), str(docs / "inside.txt"), str(docs / "leak.txt")]
    assert "secret" in {w for t in texts(store, embedder) for w in t.split()}
    # The API's way: confined to the roots, checked file by file as the folder is walked; a
    # file stored before from outside them is deleted.
    report = pipeline.run([docs], confine=[root])
    assert report.deleted == [str(docs / "leak.txt")] and not report.added
    reasons = {Path(f.path).name: f.reason for f in report.failed}
    assert set(reasons) == {"leak.txt", "dangling.txt"}
    assert "outside the allowed ingest roots" in reasons["leak.txt"]
    assert "secret" not in {w for t in texts(store, embedder) for w in t.split()}
    with pytest.raises(PermissionDeniedError, match="outside the allowed ingest roots"):
        pipeline.run([tmp_path / "secret"], confine=[root])


def texts(store: VectorStore, embedder: HashEmbedder) -> list[str]:
    hits = store.search(SearchQuery("secret delta", embedder.embed_query("secret delta"), k=100))
    return [h.chunk.text for h in hits]


def test_a_docx_bomb_fails_alone(
    tmp_path: Path, settings: Settings, embedder: HashEmbedder
) -> None:
    docs = tmp_path / "docs"
    good = write(docs / "good.txt", "alpha good text " * 10)
    zip_bomb(docs / "bomb.docx", member_bytes=64 * 1024 * 1024)
    report = run_ingest(settings, [docs], embedder=embedder)
    assert report.added == [str(good)]
    assert [Path(f.path).name for f in report.failed] == ["bomb.docx"]
    assert "decompression bomb" in report.failed[0].reason
    store = open_collection(settings, embedder)
    try:
        assert sources(store, embedder) == {str(good)}
    finally:
        store.close()


class RecordingStore:
    """The real store, with the writes and flushes it is asked for recorded in ``calls``."""

    def __init__(self, inner: VectorStore, calls: list[str]) -> None:
        self._inner = inner
        self.calls = calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def upsert(self, chunks: Any, vectors: Any) -> None:
        self.calls.append("upsert")
        self._inner.upsert(chunks, vectors)

    def delete(self, ids: Any) -> None:
        self.calls.append("delete")
        self._inner.delete(ids)

    def flush(self) -> None:
        self.calls.append("flush")
        self._inner.flush()


class RecordingState(SyncState):
    def __init__(self, path: Path, calls: list[str]) -> None:
        super().__init__(path)
        self.calls = calls

    def commit(self, records: Any) -> None:
        self.calls.append("commit")
        super().commit(records)

    def replace(self, old: str, record: Any) -> None:
        self.calls.append("commit")
        super().replace(old, record)

    def forget(self, sources: Any) -> None:
        self.calls.append("commit")
        super().forget(sources)


def test_the_store_is_flushed_before_the_state_commits(
    tmp_path: Path, settings: Settings, store: VectorStore, embedder: HashEmbedder
) -> None:
    assert type(store).__name__ == "EdgeVectorStore"  # the real embedded store underneath
    calls: list[str] = []
    state = RecordingState(state_path(settings, store.collection), calls)
    pipeline = IngestPipeline(
        embedder=embedder,
        store=cast(VectorStore, RecordingStore(store, calls)),
        state=state,
        chunker=TokenChunker(
            embedder.count_tokens, max_tokens=embedder.max_tokens, chunk_size=48, chunk_overlap=8
        ),
        max_file_bytes=10_000,
        batch_chunks=4,
    )
    docs = tmp_path / "docs"
    a = write(docs / "a.txt", "alpha words here. " * 20)
    b = write(docs / "b.txt", "beta words here. " * 20)
    try:
        pipeline.run([docs])  # adds
        write(a, "alpha words changed. " * 20)
        b.rename(docs / "moved.txt")
        pipeline.run([docs])  # a replace and a move
        (docs / "moved.txt").unlink()
        pipeline.run([docs])  # a delete
    finally:
        state.close()
    assert calls.count("commit") >= 4
    for n, call in enumerate(calls):
        if call == "commit":  # every store write before a state commit was flushed first
            writes = [i for i, c in enumerate(calls[:n]) if c in ("upsert", "delete")]
            assert not writes or "flush" in calls[writes[-1] : n], calls


def test_signatures_embed_alike_when_their_model_is_the_same() -> None:
    from ingest.pipeline import same_embedding

    old = "embed=/models/a;b:384;chunker=v1:size=200;loader=7"
    assert same_embedding(old, "embed=/models/a;b:384;chunker=v1:size=100;loader=8")
    assert not same_embedding(old, "embed=/models/a;c:384;chunker=v1:size=200;loader=7")
    assert not same_embedding(old, "embed=/models/a;b:768;chunker=v1:size=200;loader=7")
