"""Bearer keys (rag.api.deps): every /v1 route needs one when keys are configured."""

from __future__ import annotations

import re

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from rag.api.app import create_app
from rag.config import Settings
from tests.conftest import API_KEY, LiveServer
from tests.fakes import HashEmbedder, ScriptedGenerator

LIGHTHOUSE = "How far can the Lighthouse beam be seen?"


def test_every_v1_route_needs_the_key(settings: Settings) -> None:
    keyed = settings.model_copy(update={"api_keys": [SecretStr(API_KEY)]})
    app = create_app(keyed, embedder=HashEmbedder(), generator=ScriptedGenerator())
    client = TestClient(app)  # no lifespan: the key is checked before anything is loaded
    paths = app.openapi()["paths"]
    routes = [(m.upper(), p) for p, ops in paths.items() if p.startswith("/v1") for m in ops]
    assert {
        ("GET", "/v1/models"),
        ("GET", "/v1/models/{model}"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/embeddings"),
    } <= set(routes)
    for method, path in routes:
        response = client.request(method, re.sub(r"\{\w+\}", "x", path), json={})
        assert response.status_code == 401, (method, path)
        assert response.json()["error"]["type"] == "invalid_request_error"
    # No keys by default, so the service binds to localhost by default.
    assert Settings.model_fields["api_keys"].default_factory is list
    assert Settings.model_fields["host"].default == "127.0.0.1"


@pytest.mark.real_models
def test_a_wrong_or_missing_key_is_401(live_server: LiveServer) -> None:
    server = live_server.url
    wrong = openai.OpenAI(base_url=f"{server}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(
            model="rag-default", messages=[{"role": "user", "content": LIGHTHOUSE}]
        )
    with pytest.raises(openai.AuthenticationError):
        wrong.embeddings.create(model="rag-default", input="x")
    missing = httpx.get(f"{server}/v1/models")
    assert missing.status_code == 401 and missing.json()["error"]["message"]
    assert httpx.get(f"{server}/healthz").status_code == 200  # health needs no key
