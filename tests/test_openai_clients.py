"""The real service as OpenAI clients use it: LangChain's chat model and embeddings, and the
OpenAPI document listing the OpenAI routes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.conftest import LiveServer

pytestmark = pytest.mark.real_models


def test_langchain_chat_and_embeddings(live_server: LiveServer, real_embedder: Any) -> None:
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings

    server, key = live_server.url, live_server.key
    chat = ChatOpenAI(
        model="rag-default", base_url=f"{server}/v1", api_key=key, max_retries=0, timeout=120
    )
    reply = chat.invoke("How deep should tomato seeds be sown?")
    assert isinstance(reply.content, str) and "tomatoes.rst" in reply.content
    assert reply.response_metadata["finish_reason"] in ("stop", "length")

    embeddings = OpenAIEmbeddings(
        model="rag-default",
        base_url=f"{server}/v1",
        api_key=key,
        check_embedding_ctx_length=False,  # otherwise LangChain sends token arrays
        max_retries=0,
    )
    vectors = embeddings.embed_documents(["The lamp is lit at sunset.", "green badge"])
    query = embeddings.embed_query("green badge")
    assert len(vectors) == 2 and len(query) == 384
    assert np.allclose(vectors[1], query, atol=1e-5)
    assert np.allclose(query, real_embedder.embed_query("green badge"), atol=1e-5)


def test_openapi_lists_the_openai_routes(live_server: LiveServer) -> None:
    paths = live_server.http.get("/openapi.json").json()["paths"]
    assert {"/v1/models", "/v1/chat/completions", "/v1/embeddings"} <= paths.keys()
