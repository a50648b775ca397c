"""GET /metrics: the Prometheus text through the real app, over the fakes and the real Edge
store (and once over the live server's real models): requests by route template, generation,
answers, jobs and collection sizes; the key; a stream still streams; hostile paths."""

from __future__ import annotations

import random
import sqlite3
import string
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from rag.api.admission import GenerationGate
from rag.api.app import create_app
from rag.api.metrics import ANSWER_OUTCOMES, UNMATCHED, ServiceMetrics
from rag.catalog import open_collection
from rag.config import Settings
from rag.generation import Message
from tests.api_jobs import wait_for_job
from tests.conftest import API_KEY, COFFEE_REPLY, LiveServer, _fill, served_on_a_thread
from tests.fakes import HashEmbedder, ScriptedGenerator

Labels = dict[str, str]
CHAT = {"model": "rag-default", "messages": [{"role": "user", "content": "descale?"}]}


def scrape(client: TestClient | httpx.Client) -> dict[str, list[tuple[Labels, float]]]:
    """Every sample of GET /metrics by its name, parsed as Prometheus parses it."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[tuple[Labels, float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def value(samples: dict[str, list[tuple[Labels, float]]], name: str, **labels: str) -> float:
    """The sample of ``name`` with exactly these labels (0 when there is none yet)."""
    found = [v for got, v in samples.get(name, []) if got == labels]
    assert len(found) <= 1, (name, labels)
    return found[0] if found else 0.0


def requests_of(samples: dict[str, list[tuple[Labels, float]]], route: str) -> list[Labels]:
    return [labels for labels, _ in samples["rag_http_requests_total"] if labels["route"] == route]


# --- requests --------------------------------------------------------------------------------


def test_requests_are_counted_and_timed_by_route_template(fake_api: TestClient) -> None:
    before = scrape(fake_api)
    for _ in range(2):
        assert fake_api.get("/v1/models/rag-default").status_code == 200
    assert fake_api.get("/v1/collections/nowhere/map").status_code == 404
    after = scrape(fake_api)
    model = {"route": "/v1/models/{model}", "method": "GET", "status": "200"}
    assert value(after, "rag_http_requests_total", **model) == 2
    assert value(after, "rag_http_request_duration_seconds_count", **model) == 2
    assert value(after, "rag_http_request_duration_seconds_sum", **model) > 0
    missing = {"route": "/v1/collections/{name}/map", "method": "GET", "status": "404"}
    assert value(after, "rag_http_requests_total", **missing) == 1
    # The first scrape is counted by the time of the second.
    scraped = {"route": "/metrics", "method": "GET", "status": "200"}
    assert value(after, "rag_http_requests_total", **scraped) == (
        value(before, "rag_http_requests_total", **scraped) + 1
    )
    assert not any("rag-default" in str(labels) for labels, _ in after["rag_http_requests_total"])


def test_unknown_paths_and_methods_have_fixed_labels(fake_api: TestClient) -> None:
    assert fake_api.get("/no/such/page").status_code == 404
    assert fake_api.get("/v1/no-such-route").status_code == 404
    assert fake_api.request("BREW", "/healthz").status_code == 405
    samples = scrape(fake_api)
    unmatched = {"route": UNMATCHED, "method": "GET", "status": "404"}
    assert value(samples, "rag_http_requests_total", **unmatched) == 2
    other = {"route": "/healthz", "method": "other", "status": "405"}
    assert value(samples, "rag_http_requests_total", **other) == 1


def test_requests_refused_before_routing_keep_their_route(fake_api: TestClient) -> None:
    """The key guard answers before the router: the request is still labelled by its route."""
    refused = fake_api.post("/v1/search", json={"query": "descale"}, headers={"Authorization": ""})
    assert refused.status_code == 401
    assert fake_api.get("/app/no-such-asset.js").status_code == 404
    samples = scrape(fake_api)
    assert (
        value(samples, "rag_http_requests_total", route="/v1/search", method="POST", status="401")
        == 1
    )
    assert (
        value(samples, "rag_http_requests_total", route="/app/{path}", method="GET", status="404")
        == 1
    )


def test_hostile_paths_of_many_random_segments_make_one_unmatched_label(
    fake_api: TestClient,
) -> None:
    rng = random.Random(7)
    words = string.ascii_letters + string.digits
    for _ in range(5):
        segments = ("".join(rng.choices(words, k=4)) for _ in range(10_000))
        path = "/" + "/".join(segments)
        assert fake_api.get(path).status_code == 404
        assert fake_api.post("/v1/" + path.lstrip("/")).status_code == 404
    samples = scrape(fake_api)
    assert requests_of(samples, UNMATCHED) == [
        {"route": UNMATCHED, "method": "GET", "status": "404"},
        {"route": UNMATCHED, "method": "POST", "status": "404"},
    ]
    unmatched = {"route": UNMATCHED, "method": "GET", "status": "404"}
    assert value(samples, "rag_http_requests_total", **unmatched) == 5
    routes = {labels["route"] for labels, _ in samples["rag_http_requests_total"]}
    assert all(len(route) < 100 for route in routes)


# --- the key ---------------------------------------------------------------------------------


def test_metrics_need_the_key_when_keys_are_set(fake_api: TestClient) -> None:
    assert fake_api.get("/metrics", headers={"Authorization": ""}).status_code == 401
    assert fake_api.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert fake_api.get("/metrics").status_code == 200  # the fixture sends the key


def test_metrics_are_open_without_keys(settings: Settings, embedder: HashEmbedder) -> None:
    app = create_app(settings, embedder=embedder, generator=ScriptedGenerator())
    with TestClient(app) as client:
        samples = scrape(client)
    assert value(samples, "rag_generation_queue_depth") == 0
    assert value(samples, "rag_generation_slots_in_use") == 0


def test_each_app_has_a_registry_of_its_own(settings: Settings, embedder: HashEmbedder) -> None:
    first = create_app(settings, embedder=embedder, generator=ScriptedGenerator())
    with TestClient(first) as client:
        client.get("/healthz")
        client.get("/healthz")
    second = create_app(settings, embedder=embedder, generator=ScriptedGenerator())
    with TestClient(second) as client:
        client.get("/healthz")
        samples = scrape(client)
    healthz = {"route": "/healthz", "method": "GET", "status": "200"}
    assert value(samples, "rag_http_requests_total", **healthz) == 1


# --- generation and answers ------------------------------------------------------------------


def test_a_streamed_chat_completion_counts_its_tokens_and_first_token(
    fake_api: TestClient,
) -> None:
    streamed = fake_api.post("/v1/chat/completions", json=CHAT | {"stream": True})
    assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")
    samples = scrape(fake_api)
    # The scripted model's tokens are words.
    assert value(samples, "rag_generation_tokens_total") == len(COFFEE_REPLY.split())
    assert value(samples, "rag_generation_time_to_first_token_seconds_count") == 1
    assert value(samples, "rag_generation_tokens_per_second_count") == 1
    assert value(samples, "rag_answers_total", outcome="generated") == 1
    chat = {"route": "/v1/chat/completions", "method": "POST", "status": "200"}
    assert value(samples, "rag_http_requests_total", **chat) == 1


def test_answers_are_counted_by_outcome(fake_api: TestClient) -> None:
    asked = fake_api.post("/v1/query", json={"question": "Who founded Zanzibar Airways?"})
    assert asked.status_code == 200 and asked.json()["abstained"], asked.text
    samples = scrape(fake_api)
    assert {labels["outcome"] for labels, _ in samples["rag_answers_total"]} == set(ANSWER_OUTCOMES)
    assert value(samples, "rag_answers_total", outcome="abstained") == 1
    assert value(samples, "rag_answers_total", outcome="generated") == 0
    assert value(samples, "rag_generation_tokens_total") == 0  # an abstention generates nothing


def fill_collection(settings: Settings, embedder: HashEmbedder) -> None:
    """The two conftest documents in the default collection, which is closed again for the
    app to open."""
    store = open_collection(settings, embedder, create=True)
    try:
        _fill(store, embedder)
    finally:
        store.close()


def test_an_answer_that_fails_the_check_is_counted_as_a_fallback(
    settings: Settings, embedder: HashEmbedder
) -> None:
    fill_collection(settings, embedder)
    unsupported = ScriptedGenerator(["Bicycles are painted green every 17 days [1]."])
    app = create_app(settings, embedder=embedder, generator=unsupported)
    with TestClient(app) as client:
        answer = client.post("/v1/query", json={"question": "descale?"}).json()
        assert answer["extractive"] and not answer["abstained"]
        samples = scrape(client)
    assert value(samples, "rag_answers_total", outcome="fallback") == 1
    assert value(samples, "rag_generation_tokens_total") > 0


# --- a stream still streams --------------------------------------------------------------------


class HeldGenerator(ScriptedGenerator):
    """Writes nothing until ``release`` is set (at most 30 s)."""

    def __init__(self, reply: str) -> None:
        super().__init__([reply])
        self.release = threading.Event()
        self.started = threading.Event()

    def stream(self, messages: Sequence[Message], *, max_new_tokens: int) -> Iterator[str]:
        self.started.set()
        self.release.wait(30)
        yield from super().stream(messages, max_new_tokens=max_new_tokens)


def test_a_streamed_response_is_sent_as_it_is_made(
    settings: Settings, embedder: HashEmbedder
) -> None:
    """Over a socket: the first event arrives while the model has written nothing yet."""
    fill_collection(settings, embedder)
    model = HeldGenerator(COFFEE_REPLY)
    app = create_app(settings, embedder=embedder, generator=model)
    with (
        served_on_a_thread(app) as url,
        httpx.Client(base_url=url, timeout=10) as http,
        http.stream("POST", "/v1/chat/completions", json=CHAT | {"stream": True}) as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()
        first = next(line for line in lines if line)
        assert '"role":"assistant"' in first.replace(" ", "")
        assert model.started.wait(10) and not model.release.is_set()
        model.release.set()
        rest = [line for line in lines if line]
        assert rest[-1] == "data: [DONE]"
        assert any("Descale" in line for line in rest)
    samples = scrape(TestClient(app))  # the registry outlives the server
    chat = {"route": "/v1/chat/completions", "method": "POST", "status": "200"}
    assert value(samples, "rag_http_requests_total", **chat) == 1


# --- jobs and collections ----------------------------------------------------------------------


def test_an_ingest_job_counts_chunks_jobs_and_collection_points(
    settings: Settings, embedder: HashEmbedder, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nalpha lantern words " * 10)
    (docs / "b.txt").write_text("beta orchard words " * 10)
    keyed = settings.model_copy(update={"ingest_roots": [docs], "api_keys": [SecretStr(API_KEY)]})
    app = create_app(keyed, embedder=embedder, generator=ScriptedGenerator())
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with TestClient(app, headers=headers) as client:
        empty = scrape(client)
        assert value(empty, "rag_collection_points", collection="default") == 0
        assert value(empty, "rag_jobs", status="done") == 0
        job = wait_for_job(client, client.post("/v1/ingest", json={"path": str(docs)}).json())
        assert job["status"] == "done", job
        chunks = job["progress"]["chunks_written"]
        assert chunks > 0
        samples = wait_for_sample(
            client, "rag_job_duration_seconds_count", kind="ingest", status="done"
        )
        assert value(samples, "rag_jobs", status="done") == 1
        assert value(samples, "rag_jobs", status="queued") == 0
        assert value(samples, "rag_jobs", status="failed") == 0
        assert value(samples, "rag_ingest_chunks_total") == chunks
        assert value(samples, "rag_collection_points", collection="default") == chunks


def wait_for_sample(
    client: TestClient, name: str, **labels: str
) -> dict[str, list[tuple[Labels, float]]]:
    """Scrapes until the sample is positive (the job is reported done a moment before its
    runner has timed it); fails after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        samples = scrape(client)
        if value(samples, name, **labels) > 0 or time.monotonic() > deadline:
            assert value(samples, name, **labels) > 0, (name, labels)
            return samples
        time.sleep(0.05)


def test_the_open_collections_points_are_counted(fake_api: TestClient) -> None:
    samples = scrape(fake_api)
    assert value(samples, "rag_collection_points", collection="default") == 2


class CountedStore:
    def __init__(self, points: int | None) -> None:
        self.points = points

    def count(self, *, exact: bool = True) -> int:
        if self.points is None:
            raise RuntimeError("the collection is busy")
        return self.points


class LockedJobs:
    def counts(self) -> dict[str, int]:
        raise sqlite3.OperationalError("database is locked")


def test_what_cannot_be_read_is_left_out_of_the_scrape(caplog: pytest.LogCaptureFixture) -> None:
    metrics = ServiceMetrics()
    state = SimpleNamespace(
        jobs=LockedJobs(),
        open_stores=lambda: [("busy", CountedStore(None)), ("ready", CountedStore(3))],
    )
    gate = GenerationGate(concurrency=1, queue=1, timeout=1)
    try:
        metrics.watch(state, gate)  # type: ignore[arg-type]
        text = metrics.render().decode()
    finally:
        gate.close()
    samples = {s.name: s for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["rag_collection_points"].labels == {"collection": "ready"}
    assert samples["rag_collection_points"].value == 3
    assert "rag_jobs" not in samples
    assert samples["rag_generation_queue_depth"].value == 0
    assert "could not count collection 'busy'" in caplog.text
    assert "could not count the jobs" in caplog.text


# --- the real models -------------------------------------------------------------------------


@pytest.mark.real_models
def test_the_live_service_reports_its_ingestion_and_answers(live_server: LiveServer) -> None:
    """`rag serve` with the real models: its start-up ingestion of the six fixture documents and
    an answer show in its metrics."""
    asked = live_server.http.post("/v1/query", json={"question": "How do I install Skylark?"})
    assert asked.status_code == 200, asked.text
    samples = scrape(live_server.http)
    assert value(samples, "rag_jobs", status="done") >= 1
    assert value(samples, "rag_ingest_chunks_total") > 0
    assert value(samples, "rag_collection_points", collection="default") > 0
    assert sum(v for _, v in samples["rag_answers_total"]) >= 1
    query = {"route": "/v1/query", "method": "POST", "status": "200"}
    assert value(samples, "rag_http_requests_total", **query) >= 1
