"""Ingestion through the API, with the fakes behind the protocols and the real Edge store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rag.api.app import create_app
from rag.config import Settings
from tests.api_jobs import wait_for_job
from tests.conftest import TEST_HOST
from tests.fakes import HashEmbedder, ScriptedGenerator


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    root = tmp_path / "allowed"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.md").write_text("# Alpha\n\nalpha lantern words " * 10)
    (root / "docs" / "b.txt").write_text("beta orchard words " * 10)
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "s.txt").write_text("secret words")
    return root


@pytest.fixture
def client(tmp_path: Path, roots: Path) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path / "data",
        ingest_roots=[roots],
        max_upload_bytes=2000,
        api_keys=["sesame"],
        min_similarity=0.1,
        allowed_hosts=[TEST_HOST],
    )
    app = create_app(settings, embedder=HashEmbedder(), generator=ScriptedGenerator())
    with TestClient(app, headers={"Authorization": "Bearer sesame"}) as test_client:
        yield test_client


def test_folder_job_progress_documents_and_delete(client: TestClient, roots: Path) -> None:
    response = client.post("/v1/ingest", json={"path": str(roots / "docs")})
    assert response.status_code == 202
    job = wait_for_job(client, response.json())
    assert job["status"] == "done" and len(job["report"]["added"]) == 2
    assert job["progress"]["files_done"] == job["progress"]["files_total"] == 2
    docs = client.get("/v1/documents").json()
    assert [Path(d["source"]).name for d in docs] == ["a.md", "b.txt"]
    assert all(d["chunks"] > 0 for d in docs)
    opened = client.get("/v1/documents/chunks", params={"source": docs[0]["source"]}).json()
    assert opened["display_source"] == "a.md" and len(opened["chunks"]) == docs[0]["chunks"]
    assert [c["start"] for c in opened["chunks"]] == sorted(c["start"] for c in opened["chunks"])
    assert "alpha lantern" in " ".join(c["text"] for c in opened["chunks"]).lower()
    gone = client.delete("/v1/documents", params={"source": docs[0]["source"]})
    assert gone.status_code == 200 and gone.json()["chunks_deleted"] == docs[0]["chunks"]
    assert [Path(d["source"]).name for d in client.get("/v1/documents").json()] == ["b.txt"]
    missing = client.get("/v1/documents/chunks", params={"source": docs[0]["source"]})
    assert missing.status_code == 404 and "no document" in missing.json()["error"]["message"]
    hits = client.post("/v1/search", json={"query": "alpha lantern", "k": 5}).json()["hits"]
    assert all(Path(h["source"]).name != "a.md" for h in hits)


@pytest.mark.parametrize("path", ["../secret", "docs/../../secret", "/etc"])
def test_paths_outside_the_roots_are_refused(client: TestClient, roots: Path, path: str) -> None:
    target = path if path.startswith("/") else str(roots / path)
    response = client.post("/v1/ingest", json={"path": target})
    assert response.status_code == 403
    assert "outside the allowed ingest roots" in response.json()["error"]["message"]


def test_symlink_out_of_a_root_is_refused(client: TestClient, roots: Path) -> None:
    (roots / "link").symlink_to(roots.parent / "secret")
    response = client.post("/v1/ingest", json={"path": str(roots / "link")})
    assert response.status_code == 403


def searched(client: TestClient, query: str) -> set[str]:
    hits = client.post("/v1/search", json={"query": query, "k": 20}).json()["hits"]
    return {Path(h["source"]).name for h in hits}


def test_symlinked_file_out_of_a_root_is_refused_when_walked(
    client: TestClient, roots: Path
) -> None:
    docs = roots / "docs"
    (docs / "leak.txt").symlink_to(roots.parent / "secret" / "s.txt")
    (roots / "shared").mkdir()
    (roots / "shared" / "c.txt").write_text("gamma harbour words " * 10)
    (docs / "inside.txt").symlink_to(roots / "shared" / "c.txt")
    job = wait_for_job(client, client.post("/v1/ingest", json={"path": str(docs)}).json())
    assert job["status"] == "done"
    report = job["report"]
    assert sorted(Path(p).name for p in report["added"]) == ["a.md", "b.txt", "inside.txt"]
    assert [(Path(f["path"]).name, f["reason"]) for f in report["failed"]] == [
        ("leak.txt", "symbolic link to a file outside the allowed ingest roots (RAG_INGEST_ROOTS)")
    ]
    listed = {Path(d["source"]).name for d in client.get("/v1/documents").json()}
    assert listed == {"a.md", "b.txt", "inside.txt"}
    assert "leak.txt" not in searched(client, "secret words")
    assert "inside.txt" in searched(client, "gamma harbour")


def test_an_emptied_or_missing_root_keeps_its_documents(client: TestClient, roots: Path) -> None:
    docs = roots / "docs"
    wait_for_job(client, client.post("/v1/ingest", json={"path": str(docs)}).json())
    for f in docs.iterdir():
        f.unlink()
    job = wait_for_job(client, client.post("/v1/ingest", json={"path": str(docs)}).json())
    assert job["status"] == "failed"
    assert f"{docs}: no supported documents in it now" in job["error"]
    assert '"allow_empty": true' in job["error"]
    assert len(client.get("/v1/documents").json()) == 2
    assert "a.md" in searched(client, "alpha lantern")

    docs.rmdir()
    refused = client.post("/v1/ingest", json={"path": str(docs)})
    assert refused.status_code == 400 and "no such file or folder" in refused.text
    assert len(client.get("/v1/documents").json()) == 2
    asked = client.post("/v1/ingest", json={"path": str(docs), "allow_empty": True})
    job = wait_for_job(client, asked.json())
    assert job["status"] == "done" and len(job["report"]["deleted"]) == 2
    assert client.get("/v1/documents").json() == []


def test_upload_limits_and_types(client: TestClient) -> None:
    ok = client.post(
        "/v1/documents",
        files=[("files", ("notes.md", b"# Notes\n\nuploaded gamma text", "text/markdown"))],
        data={"collection": "uploads"},
    )
    assert ok.status_code == 202
    assert wait_for_job(client, ok.json())["status"] == "done"
    listed = client.get("/v1/documents", params={"collection": "uploads"}).json()
    assert [Path(d["source"]).name for d in listed] == ["notes.md"]

    too_big = client.post(
        "/v1/documents", files=[("files", ("big.txt", b"x " * 2000, "text/plain"))]
    )
    assert too_big.status_code == 413 and "big.txt" in too_big.json()["error"]["message"]
    odd = client.post(
        "/v1/documents", files=[("files", ("virus.exe", b"MZ", "application/octet-stream"))]
    )
    assert odd.status_code == 400 and odd.json()["error"]["param"] == "files"


def test_collections_create_list_drop(client: TestClient) -> None:
    assert client.post("/v1/collections", json={"name": "team"}).status_code == 201
    names = [c["name"] for c in client.get("/v1/collections").json()["collections"]]
    assert "team" in names and "default" in names
    assert client.delete("/v1/collections/team").status_code == 200
    names = [c["name"] for c in client.get("/v1/collections").json()["collections"]]
    assert "team" not in names
    assert client.delete("/v1/collections/team").status_code == 404
    assert client.post("/v1/collections", json={"name": "../x"}).status_code == 400


def test_keys_are_required(client: TestClient) -> None:
    response = client.get("/v1/jobs", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401 and response.json()["error"]["message"] == "invalid API key"


def test_reindex_job_keeps_serving_queries(client: TestClient, roots: Path) -> None:
    wait_for_job(client, client.post("/v1/ingest", json={"path": str(roots / "docs")}).json())
    before = {
        h["chunk_id"]
        for h in client.post("/v1/search", json={"query": "alpha lantern", "k": 50}).json()["hits"]
    }
    job = client.post("/v1/collections/default/reindex").json()
    statuses: list[int] = []
    while (current := client.get(f"/v1/jobs/{job['id']}").json())["status"] in (
        "queued",
        "running",
    ):
        statuses.append(client.post("/v1/search", json={"query": "alpha lantern"}).status_code)
    assert current["status"] == "done", current
    assert set(statuses) <= {200}
    after = client.post("/v1/search", json={"query": "alpha lantern", "k": 50}).json()["hits"]
    assert {h["chunk_id"] for h in after} == before  # same settings: the same chunks again
    assert client.post("/v1/collections/nothere/reindex").status_code == 404
