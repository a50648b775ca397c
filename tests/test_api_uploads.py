"""Uploaded file names (rag.api.uploads): Unicode kept, made safe, never two names in one file,
no shared temporary files, and a 400 for a name nothing usable is left of."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rag.api.app import create_app
from rag.api.uploads import MAX_NAME_BYTES, stored_name
from rag.config import Settings
from rag.errors import InvalidInputError
from tests.api_jobs import wait_for_job
from tests.conftest import TEST_HOST
from tests.fakes import HashEmbedder, ScriptedGenerator

LONG = "长" * 100 + ".md"  # 303 bytes in UTF-8


@pytest.mark.parametrize(
    ("uploaded", "stored"),
    [
        ("报告.md", "报告.md"),
        ("合同.md", "合同.md"),
        ("Café notes v2.txt", "Café notes v2.txt"),
        ("../../etc/passwd.md", "passwd.md"),
        ("C:\\Users\\ana\\plan.md", "plan.md"),
        ("  spaced.md  ", None),
        (".hidden.md", None),
        ("a\x00b.md", None),
        ("line\nbreak.md", None),
        ("\u202egpj.md", None),
        ("a:b.md", None),
        ("a~b.md", None),
        (LONG, None),
    ],
)
def test_stored_names_keep_unicode_and_are_safe(uploaded: str, stored: str | None) -> None:
    name = stored_name(uploaded)
    if stored is not None:
        assert name == stored
    assert 0 < len(name.encode()) <= MAX_NAME_BYTES
    assert "/" not in name and "\\" not in name and not name.startswith((".", " "))
    assert all(unicodedata.category(c) not in ("Cc", "Cs") and c != "\u202e" for c in name)
    assert Path(name).suffix == Path(uploaded.strip()).suffix


def test_names_are_changed_only_as_needed_and_never_merged() -> None:
    assert stored_name("a:b.md") != stored_name("a_b.md") != stored_name("a~b.md")
    assert stored_name("a:b.md") != stored_name("a*b.md")
    assert stored_name("a:b.md").startswith("a_b~")
    assert stored_name(".hidden.md").startswith("hidden~")
    assert stored_name(LONG) != stored_name("长" * 99 + "短.md")
    # The same name is stored under the same name, whatever its Unicode normalization.
    assert stored_name("a:b.md") == stored_name("a:b.md")
    assert stored_name(unicodedata.normalize("NFD", "Café.md")) == "Café.md"


@pytest.mark.parametrize("uploaded", ["", "...", " . ", "\x00\x01", "/", ".md", "x.exe", "x"])
def test_unusable_names_are_refused(uploaded: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        stored_name(uploaded)
    assert refused.value.field == "files"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path / "data",
        allowed_hosts=[TEST_HOST],
        max_upload_bytes=2000,
        min_similarity=0.1,
    )
    app = create_app(settings, embedder=HashEmbedder(), generator=ScriptedGenerator())
    with TestClient(app) as test_client:
        yield test_client


def upload(client: TestClient, *files: tuple[str, bytes]) -> Any:
    return client.post("/v1/documents", files=[("files", (n, b, "text/plain")) for n, b in files])


def stored(client: TestClient) -> dict[str, str]:
    """Name -> text of every uploaded file of the default collection, as ingested."""
    documents = client.get("/v1/documents").json()
    return {Path(d["source"]).name: Path(d["source"]).read_text() for d in documents}


def test_two_unicode_names_in_one_request_are_two_documents(client: TestClient) -> None:
    response = upload(
        client, ("报告.md", b"# Report\n\nquarterly report"), ("合同.md", b"contract")
    )
    assert response.status_code == 202, response.text
    assert wait_for_job(client, response.json())["status"] == "done"
    assert stored(client) == {"报告.md": "# Report\n\nquarterly report", "合同.md": "contract"}


def test_names_that_clean_alike_stay_apart_and_a_repeated_name_replaces(
    client: TestClient,
) -> None:
    first = upload(client, ("a:b.md", b"colon"), ("a_b.md", b"underscore"), (LONG, b"long"))
    assert first.status_code == 202, first.text
    assert wait_for_job(client, first.json())["status"] == "done"
    names = stored(client)
    assert sorted(names.values()) == ["colon", "long", "underscore"]
    assert names["a_b.md"] == "underscore"

    again = upload(client, ("a:b.md", b"colon again"))
    assert wait_for_job(client, again.json())["status"] == "done"
    assert sorted(stored(client).values()) == ["colon again", "long", "underscore"]


def test_a_refused_upload_stores_nothing(client: TestClient, tmp_path: Path) -> None:
    folder = tmp_path / "data" / "uploads" / "default"
    kept = upload(client, ("keep.md", b"first version"))
    assert wait_for_job(client, kept.json())["status"] == "done"

    twice = upload(client, ("keep.md", b"second"), ("keep.md", b"third"))
    assert twice.status_code == 400 and twice.json()["error"]["param"] == "files"
    too_big = upload(client, ("keep.md", b"new version"), ("big.txt", b"x" * 2001))
    assert too_big.status_code == 413 and "big.txt" in too_big.json()["error"]["message"]
    unusable = upload(client, ("ok.md", b"fine"), ("...", b"no name"))
    assert unusable.status_code == 400 and unusable.json()["error"]["param"] == "files"

    assert sorted(p.name for p in folder.iterdir()) == ["keep.md"]  # no temporary file left
    assert stored(client) == {"keep.md": "first version"}


def test_concurrent_uploads_of_one_name_share_no_temporary_file(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        allowed_hosts=[TEST_HOST],
        max_upload_bytes=10_000_000,
        ingest_in_process=False,
    )
    app = create_app(settings, embedder=HashEmbedder(), generator=ScriptedGenerator())
    contents = [bytes([ord("a") + i]) * 3_000_000 for i in range(8)]
    with TestClient(app) as client:

        def send(content: bytes) -> int:
            return upload(client, ("same.txt", content)).status_code

        for _ in range(3):
            with ThreadPoolExecutor(len(contents)) as pool:
                statuses = list(pool.map(send, contents))
            assert statuses == [202] * len(contents)
            folder = tmp_path / "data" / "uploads" / "default"
            assert [p.name for p in folder.iterdir()] == ["same.txt"]
            assert (folder / "same.txt").read_bytes() in contents  # one whole version
