"""The embedding map, clusters, outliers, similar documents and question statistics
(rag.explore and rag/api/routes/explore.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from rag.api.app import create_app
from rag.catalog import open_collection
from rag.chunking import chunk_id
from rag.config import Settings
from rag.errors import DocumentNotFoundError
from rag.explore.labels import cluster_terms
from rag.explore.maps import (
    build_map,
    is_stale,
    load_map,
    load_shift,
    refresh_map,
    source_folders,
)
from rag.explore.neighbours import similar_documents
from rag.explore.stats import QuestionLog, QuestionOutcome
from rag.store.base import VectorStore
from rag.types import Chunk
from tests.conftest import API_KEY, ingest_fixture_folder
from tests.fakes import HashEmbedder, ScriptedGenerator

TOPICS = {
    "coffee": "espresso grinder descale boiler crema portafilter",
    "garden": "tomato compost mulch seedling pruning trellis",
    "sailing": "mainsail rudder keel halyard tiller spinnaker",
}
ODD = "/d/odd/quasar.txt"


def _chunks() -> list[Chunk]:
    """Three documents per topic of three chunks each, and one document on nothing else."""
    chunks = []
    for topic, words in TOPICS.items():
        vocabulary = words.split()
        for d in range(3):
            source = f"/d/{topic}/doc{d}.md"
            for c in range(3):
                text = " ".join(vocabulary[(c + i) % 6] for i in range(4)) + f" part {d}"
                chunks.append(
                    Chunk(id=chunk_id(source, text, c), source=source, title=topic, text=text)
                )
    odd = "quasar pulsar nebula redshift"
    chunks.append(Chunk(id=chunk_id(ODD, odd, 0), source=ODD, title="quasar", text=odd))
    return chunks


def _fill(store: VectorStore, embedder: HashEmbedder) -> list[Chunk]:
    chunks = _chunks()
    store.upsert(chunks, embedder.embed_documents([c.embedding_text for c in chunks]))
    return chunks


@pytest.fixture
def topic_store(settings: Settings, embedder: HashEmbedder) -> Iterator[VectorStore]:
    store = open_collection(settings, embedder, create=True)
    _fill(store, embedder)
    yield store
    store.close()


def test_cluster_terms_are_each_clusters_distinctive_words() -> None:
    texts = ["red apple pie", "apple cider red", "blue whale ocean", "ocean blue tide"]
    terms = cluster_terms(texts, np.array([0, 0, 1, 1]), clusters=2, top=2)
    assert set(terms[0]) == {"apple", "red"}
    assert set(terms[1]) == {"ocean", "blue"}
    assert cluster_terms([], np.array([], dtype=int), clusters=2) == [[], []]


def test_the_map_places_every_chunk_labels_clusters_and_finds_the_outlier(
    topic_store: VectorStore,
) -> None:
    phases: list[str] = []
    built = build_map(
        topic_store,
        version="v",
        fit_sample=20,
        clusters=3,
        progress=lambda phase, done, total: phases.append(phase),
    )
    assert sorted(built.ids.tolist()) == sorted(topic_store.point_ids())
    assert built.xy.shape == (28, 2) and np.isfinite(built.xy).all()
    assert built.meta.fit_sample == 20 and built.meta.total == 28
    assert phases[0] == "reading" and phases[-1] == "done"
    assert sum(c.size for c in built.meta.clusters) == 28
    # Each topic's chunks share a cluster, labelled by that topic's words.
    for topic, words in TOPICS.items():
        ids = {c.id for c in _chunks() if c.title == topic}
        labels = {int(built.cluster[i]) for i, p in enumerate(built.ids) if p in ids}
        assert len(labels) == 1, topic
        cluster = built.meta.clusters[labels.pop()]
        assert set(cluster.terms[:3]) <= set(words.split()), (topic, cluster.terms)
        assert all(e["source"].startswith(f"/d/{topic}/") for e in cluster.examples)
    assert built.meta.outliers[0].source == ODD
    assert built.meta.outliers[0].distance > built.meta.outliers[-1].distance


def test_the_tsne_layout_keeps_topics_together_and_pca_stays_available(
    topic_store: VectorStore,
) -> None:
    tsne = build_map(topic_store, version="v", fit_sample=28, clusters=3, layout_sample=20)
    assert tsne.meta.layout == "tsne" and tsne.meta.layout_sample == 20
    assert np.isfinite(tsne.xy).all()
    # Each topic's chunks, the eight placed after the fit among them, lie nearer their own
    # topic's centre on the map than any other topic's.
    topic_of = {c.id: c.title for c in _chunks()}
    topics = np.array([topic_of[i] for i in tsne.ids])
    centres = {t: tsne.xy[topics == t].mean(axis=0) for t in TOPICS}
    for point, topic in zip(tsne.xy, topics, strict=True):
        if topic in centres:
            nearest = min(centres, key=lambda t: float(np.linalg.norm(point - centres[t])))
            assert nearest == topic
    pca = build_map(topic_store, version="v", fit_sample=28, clusters=3, layout="pca")
    assert pca.meta.layout == "pca" and pca.meta.layout_sample == 0
    assert pca.ids.tolist() == tsne.ids.tolist() and not np.allclose(pca.xy, tsne.xy)


def test_a_cached_map_turns_stale_when_the_collection_changes(
    settings: Settings, topic_store: VectorStore, embedder: HashEmbedder
) -> None:
    built = refresh_map(settings, topic_store)
    cached = load_map(settings, topic_store.collection)
    assert cached is not None and cached.ids.tolist() == built.ids.tolist()
    assert not is_stale(settings, topic_store, cached.meta)
    extra = Chunk(
        id=chunk_id("/d/new.txt", "new words", 0), source="/d/new.txt", title="", text="new"
    )
    topic_store.upsert([extra], embedder.embed_documents(["new words"]))
    assert is_stale(settings, topic_store, cached.meta)


def test_a_rebuilt_map_measures_how_the_collection_shifted(
    settings: Settings, topic_store: VectorStore, embedder: HashEmbedder
) -> None:
    first = refresh_map(settings, topic_store)
    assert load_shift(settings, topic_store.collection) is None  # nothing to compare with
    # Six chunks more on coffee, and the odd document removed.
    words = TOPICS["coffee"].split()
    extra = []
    for d in range(2):
        source = f"/d/coffee/new{d}.md"
        for c in range(3):
            text = " ".join(words[(c + i) % 6] for i in range(4)) + f" new {d}"
            extra.append(Chunk(id=chunk_id(source, text, c), source=source, title="", text=text))
    topic_store.upsert(extra, embedder.embed_documents([c.embedding_text for c in extra]))
    topic_store.delete_source(ODD)
    vectors = {c.id: v for c, v in topic_store.fetch(sorted(topic_store.point_ids()))}
    refresh_map(settings, topic_store)
    shift = load_shift(settings, topic_store.collection)
    assert shift is not None and shift.before_version == first.meta.version
    assert (shift.chunks_before, shift.chunks_after) == (28, 33)
    assert shift.added == ["/d/coffee/new0.md", "/d/coffee/new1.md"] and shift.removed == [ODD]
    assert (shift.documents_added, shift.documents_removed) == (2, 1)
    # The mean vector moved by the cosine distance between the old and new means.
    new_mean = np.mean(list(vectors.values()), axis=0)
    old_mean = first.centroid
    cosine = float(old_mean @ new_mean) / float(np.linalg.norm(old_mean) * np.linalg.norm(new_mean))
    assert shift.centroid_distance == pytest.approx(1 - cosine, abs=1e-5)
    assert shift.centroid_distance > 0
    # In the first map's clusters: coffee's share grew, every chunk is counted once.
    assert sum(c.before for c in shift.clusters) == 28
    assert sum(c.after for c in shift.clusters) == 33
    assert sum(c.share_moved for c in shift.clusters) == pytest.approx(0, abs=1e-5)
    coffee = next(
        c for c in shift.clusters if "espresso" in " ".join(c.terms) or "crema" in " ".join(c.terms)
    )
    assert coffee.after == coffee.before + 6 and coffee.share_moved > 0
    # A rebuild of an unchanged collection keeps the last shift.
    refresh_map(settings, topic_store)
    assert load_shift(settings, topic_store.collection) == shift


def test_similar_documents_come_from_the_same_topic(topic_store: VectorStore) -> None:
    found = similar_documents(topic_store, "/d/garden/doc0.md", k=2)
    assert [d.source for d in found] and len(found) == 2
    assert all(d.source.startswith("/d/garden/") for d in found)
    assert "/d/garden/doc0.md" not in {d.source for d in found}
    assert found[0].score >= found[1].score
    with pytest.raises(DocumentNotFoundError):
        similar_documents(topic_store, "/d/none.md", k=2)


def test_question_log_series(tmp_path: Path) -> None:
    log = QuestionLog(tmp_path / "q.sqlite")
    outcomes = [
        QuestionOutcome("a", abstained=True, quoted=False, fallback=False, top_similarity=0.1),
        QuestionOutcome("a", abstained=False, quoted=True, fallback=True, top_similarity=0.7),
        QuestionOutcome("b", abstained=False, quoted=False, fallback=False, top_similarity=None),
    ]
    for at, outcome in zip((1000.0, 1010.0, 1100.0), outcomes, strict=True):
        log.record(outcome, at=at)
    series = log.series(since=1000.0, bucket_seconds=60)
    assert [b.questions for b in series] == [2, 1]
    assert series[0].abstention_rate == 0.5 and series[0].fallback_rate == 0.5
    assert series[1].similarity_p50 is None
    only_b = log.series(since=0.0, bucket_seconds=10_000, collection="b")
    assert [b.questions for b in only_b] == [1]
    log.close()


@pytest.fixture
def explore_api(settings: Settings, embedder: HashEmbedder) -> Iterator[TestClient]:
    keyed = settings.model_copy(update={"api_keys": [SecretStr(API_KEY)], "map_points": 10})
    store = open_collection(keyed, embedder, create=True)
    try:
        _fill(store, embedder)
    finally:
        store.close()
    app = create_app(keyed, embedder=embedder, generator=ScriptedGenerator(["Tomato [1]."]))
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        yield client


def _wait_for_map(client: TestClient, name: str) -> None:
    job = client.app.state.rag.maps.wait(name, timeout=60)  # type: ignore[attr-defined]
    assert job is not None and job.status == "done", job


def test_map_routes_build_in_the_background_then_page_a_sample(explore_api: TestClient) -> None:
    name = Settings.model_fields["collection"].default
    first = explore_api.get(f"/v1/collections/{name}/map").json()
    assert first["ready"] is False and first["job"]["status"] in {"running", "done"}
    _wait_for_map(explore_api, name)
    page = explore_api.get(f"/v1/collections/{name}/map").json()
    assert page["ready"] and not page["stale"]
    assert page["total"] == 28 and len(page["points"]) == 10 and page["limit"] == 10
    assert "random sample" in page["sampling"] and page["fit_sample"] == 28
    rest = explore_api.get(f"/v1/collections/{name}/map", params={"offset": 10}).json()
    ids = {p["id"] for p in page["points"]} | {p["id"] for p in rest["points"]}
    assert len(ids) == 20
    point = page["points"][0]
    assert set(point) == {
        "id", "x", "y", "cluster", "folder", "source", "display_source", "title"
    }  # fmt: skip
    # Folders relative to the one the documents share (/d), the most chunks first.
    assert point["folder"] == point["source"].split("/")[2]
    assert [(f["name"], f["chunks"], f["documents"]) for f in page["folders"]] == [
        ("coffee", 9, 3), ("garden", 9, 3), ("sailing", 9, 3), ("odd", 1, 1)
    ]  # fmt: skip
    too_many = explore_api.get(f"/v1/collections/{name}/map", params={"limit": 11})
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "limit"
    negative = explore_api.get(f"/v1/collections/{name}/map", params={"offset": -1})
    assert negative.status_code == 422 and "offset" in negative.json()["error"]["param"]
    clusters = explore_api.get(f"/v1/collections/{name}/clusters").json()
    assert sum(c["size"] for c in clusters["clusters"]) == 28
    outliers = explore_api.get(f"/v1/collections/{name}/outliers", params={"k": 2}).json()
    assert outliers["outliers"][0]["source"] == ODD and len(outliers["outliers"]) == 2
    rebuilt = explore_api.post(f"/v1/collections/{name}/map")
    assert rebuilt.status_code == 202 and rebuilt.json()["collection"] == name
    _wait_for_map(explore_api, name)
    assert explore_api.get(f"/v1/collections/{name}/map/job").json()["status"] == "done"
    assert explore_api.get("/v1/collections/missing/map").status_code == 404
    assert explore_api.get("/v1/collections/bad%20name/map").status_code == 400


def test_source_folders_are_relative_to_the_shared_folder() -> None:
    sources = ["/srv/docs/a.md", "/srv/docs/manuals/b.pdf", "/srv/docs/manuals/x/c.txt"]
    assert source_folders(sources) == [".", "manuals", "manuals/x"]
    assert source_folders(["/srv/a.md", "/home/b.md"]) == ["/srv", "/home"]
    assert source_folders(["notes.txt"]) == ["."]


def test_a_query_is_located_among_its_nearest_chunks(
    explore_api: TestClient, embedder: HashEmbedder
) -> None:
    name = Settings.model_fields["collection"].default
    route = f"/v1/collections/{name}/map/locate"
    early = explore_api.get(route, params={"q": "tomato compost"})
    assert early.status_code == 409 and early.json()["error"]["type"] == "conflict_error"
    _wait_for_map(explore_api, name)  # the refusal started the build
    found = explore_api.get(route, params={"q": "tomato compost mulch", "k": 4}).json()
    assert found["query"] == "tomato compost mulch" and not found["stale"]
    hits = found["hits"]
    assert len(hits) == 4 and all(h["source"].startswith("/d/garden/") for h in hits)
    assert hits[0]["similarity"] >= hits[-1]["similarity"]
    # The similarity-weighted mean of the hits' places.
    weights = np.array([h["similarity"] for h in hits])
    places = np.array([(h["x"], h["y"]) for h in hits])
    assert (found["x"], found["y"]) == pytest.approx(tuple(weights @ places / weights.sum()))
    # A chunk written since the map was built is found, not placed, and the map is stale.
    store = explore_api.app.state.rag.store(name)  # type: ignore[attr-defined]
    text = "tomato compost mulch seedling fresh"
    extra = Chunk(id=chunk_id("/d/new.md", text, 0), source="/d/new.md", title="", text=text)
    store.upsert([extra], embedder.embed_documents([text]))
    again = explore_api.get(route, params={"q": text}).json()
    assert again["stale"] and again["x"] is not None
    assert any(h["id"] == extra.id and h["x"] is None for h in again["hits"])


def test_shift_route_after_the_collection_changed(
    explore_api: TestClient, embedder: HashEmbedder
) -> None:
    name = Settings.model_fields["collection"].default
    explore_api.get(f"/v1/collections/{name}/map")
    _wait_for_map(explore_api, name)
    none = explore_api.get(f"/v1/collections/{name}/shift").json()
    assert none["ready"] and none["shift"] is None
    store = explore_api.app.state.rag.store(name)  # type: ignore[attr-defined]
    text = "quasar pulsar nebula redshift again"
    extra = Chunk(id=chunk_id("/d/new.md", text, 0), source="/d/new.md", title="", text=text)
    store.upsert([extra], embedder.embed_documents([text]))
    assert explore_api.get(f"/v1/collections/{name}/shift").json()["stale"]
    explore_api.post(f"/v1/collections/{name}/map")
    _wait_for_map(explore_api, name)
    shift = explore_api.get(f"/v1/collections/{name}/shift").json()["shift"]
    assert shift["added"] == ["/d/new.md"] and shift["removed"] == []
    assert (shift["chunks_before"], shift["chunks_after"]) == (28, 29)
    assert shift["centroid_distance"] > 0
    assert sum(c["after"] - c["before"] for c in shift["clusters"]) == 1
    assert explore_api.get("/v1/collections/missing/shift").status_code == 404


def test_similar_documents_route(explore_api: TestClient) -> None:
    found = explore_api.get("/v1/documents/similar", params={"source": "/d/coffee/doc1.md"})
    assert found.status_code == 200
    sources = [d["source"] for d in found.json()["documents"]]
    assert sources[:2] and all(s.startswith("/d/coffee/") for s in sources[:2])
    assert "/d/coffee/doc1.md" not in sources
    missing = explore_api.get("/v1/documents/similar", params={"source": "/d/none.md"})
    assert missing.status_code == 404
    bad_k = explore_api.get("/v1/documents/similar", params={"source": ODD, "k": 0})
    assert bad_k.status_code == 422 and "k" in bad_k.json()["error"]["param"]
    no_source = explore_api.get("/v1/documents/similar")
    assert no_source.status_code == 422 and "source" in no_source.json()["error"]["param"]


def test_stats_record_each_answered_question(explore_api: TestClient) -> None:
    assert explore_api.get("/v1/stats").json()["series"] == []
    explore_api.post("/v1/query", json={"question": "tomato compost mulch seedling"})
    nothing = explore_api.post("/v1/query", json={"question": "how tall is the xylophone"})
    assert nothing.json()["abstained"]  # no chunk is like it
    stats = explore_api.get("/v1/stats").json()
    assert stats["recording"] and stats["total"]["questions"] == 2
    assert stats["total"]["abstention_rate"] == 0.5
    assert stats["total"]["similarity_p90"] is not None
    assert sum(b["questions"] for b in stats["series"]) == 2
    assert explore_api.get("/v1/stats", params={"bucket_seconds": 1}).status_code == 422


@pytest.mark.real_models
def test_map_and_similar_documents_with_the_real_embedder(
    settings: Settings, real_embedder: object, tmp_path: Path
) -> None:
    folder = ingest_fixture_folder(settings, real_embedder, tmp_path / "docs")
    store = open_collection(settings, real_embedder, create=False)  # type: ignore[arg-type]
    try:
        built = refresh_map(settings, store)
        assert built.meta.total == store.count() and len(built.sources) == 6
        assert all(c.terms for c in built.meta.clusters)
        source = built.sources[0]
        found = similar_documents(store, source, k=3)
        assert 1 <= len(found) <= 3 and source not in {d.source for d in found}
        assert all(str(folder) in d.source for d in found)
    finally:
        store.close()


def test_settings_are_shown_with_secrets_masked(explore_api: TestClient) -> None:
    shown = explore_api.get("/v1/settings").json()["settings"]
    assert shown["map_points"] == 10 and shown["api_keys"] == ["**********"]
    assert API_KEY not in str(shown)


def test_a_stale_map_is_rebuilt_after_ingestion_when_set(
    settings: Settings, embedder: HashEmbedder
) -> None:
    after = settings.model_copy(update={"map_refresh": "after_ingest"})
    app = create_app(after, embedder=embedder, generator=ScriptedGenerator())
    with TestClient(app) as client:
        job = client.post(
            "/v1/documents", files={"files": ("a.md", b"# A\n\nlantern harbour words\n")}
        ).json()
        state = client.app.state.rag  # type: ignore[attr-defined]
        for _ in range(200):
            if client.get(f"/v1/jobs/{job['id']}").json()["status"] in {"done", "failed"}:
                break
            time.sleep(0.05)
        assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "done"
        name = after.collection
        for _ in range(200):  # the map job starts once the ingestion job has returned
            if state.maps.get(name) is not None:
                break
            time.sleep(0.05)
        _wait_for_map(client, name)
        assert client.get(f"/v1/collections/{name}/map").json()["total"] >= 1
