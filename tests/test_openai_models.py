"""/v1/models (rag.api.openai.models): one model per collection, 'rag-<collection>'."""

from __future__ import annotations

import openai
import pytest
from fastapi.testclient import TestClient

from tests.conftest import check_openai_error


def test_models_follow_the_collections(fake_api: TestClient) -> None:
    listed = fake_api.get("/v1/models").json()
    assert listed["object"] == "list"
    assert [list(m) for m in listed["data"]] == [["id", "object", "created", "owned_by"]]
    card = listed["data"][0]
    assert (card["id"], card["object"], card["owned_by"]) == ("rag-default", "model", "rag")
    assert fake_api.post("/v1/collections", json={"name": "team"}).status_code == 201
    assert [m["id"] for m in fake_api.get("/v1/models").json()["data"]] == [
        "rag-default",
        "rag-team",
    ]
    assert fake_api.get("/v1/models/rag-team").json() == card | {"id": "rag-team"}
    missing = fake_api.get("/v1/models/rag-nothere")
    check_openai_error(missing, 404, "model")
    assert "rag-default, rag-team" in missing.json()["error"]["message"]


@pytest.mark.real_models
def test_models_list_one_model_per_collection(openai_client: openai.OpenAI) -> None:
    models = openai_client.models.list()
    assert [m.id for m in models.data] == ["rag-default"]
    assert models.data[0].object == "model" and models.data[0].owned_by == "rag"
    assert openai_client.models.retrieve("rag-default").id == "rag-default"
    with pytest.raises(openai.NotFoundError) as info:
        openai_client.models.retrieve("rag-nothere")
    assert info.value.code == "model_not_found"
