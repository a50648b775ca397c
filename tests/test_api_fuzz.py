"""Schema-based fuzzing: schemathesis generates requests from the app's own OpenAPI document,
valid and invalid ones, for every operation, and none may get a 5xx.

In process, over the fakes (a hash embedder, a scripted generator), so every route runs fast,
chat and query included; the example count is bounded and derandomized, so a run is
repeatable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.generation.case import Case

from rag.api.app import create_app
from rag.config import Settings
from tests.conftest import API_KEY, TEST_HOST
from tests.fakes import HashEmbedder, ScriptedGenerator

EXAMPLES = 25
"""Per operation and mode."""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "docs").mkdir()
    (root / "docs" / "a.md").write_text("# Alpha\n\nalpha lantern words\n")
    config = Settings(
        data_dir=root / "data",
        allowed_hosts=[TEST_HOST],
        ingest_roots=[root / "docs"],
        api_keys=[SecretStr(API_KEY)],
        max_upload_bytes=10_000,
        min_similarity=0.1,
    )
    app = create_app(config, embedder=HashEmbedder(), generator=ScriptedGenerator(["Yes [1]."]))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _cases() -> list[tuple[str, str, GenerationMode]]:
    """Every operation with valid input, and those that take any input with invalid input."""
    app = create_app(Settings(data_dir=Path("unused")))
    cases = []
    for path, methods in app.openapi()["paths"].items():
        for method, spec in methods.items():
            cases.append((method.upper(), path, GenerationMode.POSITIVE))
            if spec.get("parameters") or spec.get("requestBody"):
                cases.append((method.upper(), path, GenerationMode.NEGATIVE))
    return cases


def _file(value: Any) -> Any:
    """A multipart value as httpx takes it (requests also takes numbers and None)."""
    if isinstance(value, tuple):
        return (value[0], _file(value[1]), *value[2:])
    return value if isinstance(value, str | bytes) else str(value)


def send(client: TestClient, case: Case) -> httpx.Response:
    """The case through the test client, which runs the app's lifespan once for all."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    kwargs.pop("cookies", None)  # the API reads none
    data = kwargs.pop("data", None)
    files = kwargs.pop("files", None)
    if isinstance(data, bytes | str):
        kwargs["content"] = data
    elif data is not None:
        kwargs["data"] = data
    if files is not None:
        kwargs["files"] = [(name, _file(value)) for name, value in files]
    headers = {str(k): str(v) for k, v in (kwargs.pop("headers", None) or {}).items()}
    headers["Authorization"] = f"Bearer {API_KEY}"
    return client.request(headers=headers, **kwargs)


@pytest.mark.parametrize(("method", "path", "mode"), _cases())
def test_no_request_gets_a_server_error(
    client: TestClient, method: str, path: str, mode: GenerationMode
) -> None:
    assert client.app is not None
    schema = schemathesis.openapi.from_dict(client.app.openapi())  # type: ignore[attr-defined]
    operation = schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Case) -> None:
        response = send(client, case)
        assert response.status_code < 500, (
            f"{case.as_curl_command()}\n-> {response.status_code} {response.text[:500]}"
        )
        if response.status_code >= 400:
            error = response.json()["error"]
            assert list(error) == ["message", "type", "param", "code"], response.text

    check()
