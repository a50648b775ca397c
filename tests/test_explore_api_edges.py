"""The explore routes at their edges, on the real Edge store with the real embedding model: an
empty collection, a collection of one document, a stale map, and bad parameters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rag.api.app import create_app
from rag.config import Settings
from tests.fakes import ScriptedGenerator

pytestmark = pytest.mark.real_models

LIGHTHOUSE = (
    b"# Lighthouse keeping\n\nThe lamp is lit at sunset and put out at dawn. The keeper trims "
    b"the wick every evening.\n\n## Fog\n\nIn fog the horn sounds twice a minute. The horn is "
    b"driven by compressed air.\n"
)
BAKERY = b"# Sourdough\n\nFeed the starter with flour and water every morning before baking.\n"


@pytest.fixture
def client(settings: Settings, real_embedder: Any) -> Iterator[TestClient]:
    app = create_app(settings, embedder=real_embedder, generator=ScriptedGenerator())
    with TestClient(app) as client:
        yield client


def _upload(client: TestClient, collection: str, name: str, body: bytes) -> None:
    job = client.post(
        "/v1/documents", files={"files": (name, body)}, data={"collection": collection}
    ).json()
    for _ in range(600):
        status = client.get(f"/v1/jobs/{job['id']}").json()["status"]
        if status in {"done", "failed"}:
            break
        time.sleep(0.05)
    assert status == "done"


def _mapped(client: TestClient, collection: str) -> dict[str, Any]:
    """The collection's map, built (again, when stale) first."""
    client.post(f"/v1/collections/{collection}/map")
    job = client.app.state.rag.maps.wait(collection, timeout=120)  # type: ignore[attr-defined]
    assert job is not None and job.status == "done", job
    found: dict[str, Any] = client.get(f"/v1/collections/{collection}/map").json()
    return found


def _param(response: Any) -> str:
    return str(response.json()["error"]["param"])


def test_an_empty_collection_maps_to_nothing(client: TestClient) -> None:
    assert client.post("/v1/collections", json={"name": "empty"}).status_code == 201
    early = client.get("/v1/collections/empty/map/locate", params={"q": "lamp"})
    assert early.status_code == 409 and "no map yet" in early.json()["error"]["message"]
    found = _mapped(client, "empty")
    assert found["ready"] and not found["stale"] and found["total"] == 0
    assert found["points"] == [] and found["clusters"] == [] and found["folders"] == []
    assert client.get("/v1/collections/empty/clusters").json()["clusters"] == []
    assert client.get("/v1/collections/empty/outliers").json()["outliers"] == []
    assert client.get("/v1/collections/empty/shift").json()["shift"] is None
    where = client.get("/v1/collections/empty/map/locate", params={"q": "lamp"}).json()
    assert where["hits"] == [] and where["x"] is None and where["y"] is None
    similar = client.get("/v1/documents/similar", params={"source": "/x.md", "collection": "empty"})
    assert similar.status_code == 404
    stats = client.get("/v1/stats", params={"collection": "empty"}).json()
    assert stats["total"] is None and stats["series"] == []


def test_a_one_document_collection_and_its_stale_map(client: TestClient) -> None:
    _upload(client, "one", "lighthouse.md", LIGHTHOUSE)
    found = _mapped(client, "one")
    chunks = found["total"]
    assert chunks >= 1 and len(found["points"]) == chunks
    assert {p["display_source"] for p in found["points"]} == {"lighthouse.md"}
    assert found["folders"] == [{"name": ".", "chunks": chunks, "documents": 1}]
    assert sum(c["size"] for c in found["clusters"]) == chunks
    assert client.get("/v1/collections/one/outliers").json()["outliers"] == []  # no other
    source = found["points"][0]["source"]
    similar = client.get("/v1/documents/similar", params={"source": source, "collection": "one"})
    assert similar.status_code == 200 and similar.json()["documents"] == []
    where = client.get("/v1/collections/one/map/locate", params={"q": "when is the lamp lit"})
    body = where.json()
    assert where.status_code == 200 and not body["stale"]
    assert body["hits"] and all(h["source"] == source for h in body["hits"])
    assert "sunset" in body["hits"][0]["text"] and body["x"] is not None

    client.post("/v1/query", json={"question": "when is the lamp lit", "collection": "one"})
    stats = client.get("/v1/stats", params={"collection": "one"}).json()
    assert stats["total"]["questions"] == 1

    # Another document: the map is stale until rebuilt, and locate says so.
    _upload(client, "one", "bakery.md", BAKERY)
    assert client.get("/v1/collections/one/map").json()["stale"]
    assert client.get("/v1/collections/one/clusters").json()["stale"]
    stale = client.get("/v1/collections/one/map/locate", params={"q": "sourdough starter"})
    body = stale.json()
    assert stale.status_code == 200 and body["stale"]
    assert body["hits"][0]["display_source"] == "bakery.md" and body["hits"][0]["x"] is None
    rebuilt = _mapped(client, "one")
    assert not rebuilt["stale"] and rebuilt["total"] > chunks
    assert {f["documents"] for f in rebuilt["folders"]} == {2}
    fresh = client.get("/v1/collections/one/map/locate", params={"q": "sourdough starter"})
    assert not fresh.json()["stale"] and fresh.json()["hits"][0]["x"] is not None


def test_bad_parameters_are_refused_naming_the_field(client: TestClient) -> None:
    _upload(client, "one", "lighthouse.md", LIGHTHOUSE)
    _mapped(client, "one")
    locate = "/v1/collections/one/map/locate"
    for params, status, field in [
        ({"q": ""}, 400, "q"),
        ({"q": "   "}, 400, "q"),
        ({"q": "x" * 2001}, 400, "q"),
        ({}, 422, "q"),
        ({"q": "lamp\u0000"}, 422, "q"),
        ({"q": "lamp", "k": 0}, 422, "k"),
        ({"q": "lamp", "k": 51}, 422, "k"),
        ({"q": "lamp", "k": "many"}, 422, "k"),
    ]:
        response = client.get(locate, params=params)
        assert response.status_code == status, (params, response.text)
        assert field in _param(response), (params, response.text)
    too_long = client.get(locate, params={"q": "x" * 2001}).json()["error"]["message"]
    assert "RAG_MAX_QUESTION_CHARS" in too_long
    for path, params, status, field in [
        ("/v1/collections/one/map", {"limit": 10_000}, 400, "limit"),
        ("/v1/collections/one/map", {"offset": -1}, 422, "offset"),
        ("/v1/collections/one/map", {"limit": 0}, 422, "limit"),
        ("/v1/collections/one/outliers", {"k": 0}, 422, "k"),
        ("/v1/collections/one/outliers", {"k": 51}, 422, "k"),
        ("/v1/documents/similar", {"collection": "one"}, 422, "source"),
        ("/v1/documents/similar", {"source": "/x", "k": 51}, 422, "k"),
        ("/v1/documents/similar", {"source": "/x", "collection": "bad name"}, 400, "collection"),
        ("/v1/stats", {"hours": 0}, 422, "hours"),
        ("/v1/stats", {"bucket_seconds": 1}, 422, "bucket_seconds"),
        ("/v1/collections/bad%20name/map/locate", {"q": "lamp"}, 400, "name"),
        ("/v1/collections/bad%20name/clusters", {}, 400, "name"),
    ]:
        response = client.get(path, params=params)
        assert response.status_code == status, (path, params, response.text)
        assert field in _param(response), (path, params, response.text)
    for path in ("map", "map/locate?q=lamp", "clusters", "outliers", "shift"):
        assert client.get(f"/v1/collections/missing/{path}").status_code == 404, path
