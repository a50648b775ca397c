"""The service's metrics, in a Prometheus registry of the app's own (``GET /metrics``).

Counted as it happens: requests by route template, method and status (``RequestMetrics``, a
pure ASGI middleware that reads only the start of a response, so bodies and streams pass
through as they are sent); generations, through ``MeteredGenerator``; answers by outcome;
the chunks written and the jobs run by the service's own job runner. Read when scraped: the
generation queue, the jobs by status, and the points of each open collection. A part that
cannot be read then (a store that is busy or closing) is left out of that scrape and logged;
it never fails the scrape.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.answering import PreparedAnswer
from rag.api.admission import GenerationGate
from rag.api.state import ServiceState
from rag.jobs import Job
from rag.types import Answer

log = logging.getLogger(__name__)

UNMATCHED = "unmatched"
"""The route label of a request that matches no route, whatever its path."""
CONTENT_TYPE = CONTENT_TYPE_LATEST
"""Of ``ServiceMetrics.render``: Prometheus' text format."""
OTHER_METHOD = "other"
CLIENT_CLOSED = 499
"""The status label of a request whose client went away before any answer was sent."""
STANDARD_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
ANSWER_OUTCOMES = ("generated", "abstained", "quoted", "fallback")
"""``generated``: the model's answer passed the grounding check; ``quoted``: a quote by
design (RAG_ANSWER_MODE); ``fallback``: a quote because the model's answer failed the check."""

_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 60)
_TOKEN_RATE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)
_JOB_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 14400)


class ServiceMetrics:
    """The registry and what feeds it. It is the service's ``GenerationObserver`` and
    ``JobObserver``, and its ``answered`` is the ``AnswerObserver``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self._requests = Counter(
            "rag_http_requests",
            "HTTP requests, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self._request_seconds = Histogram(
            "rag_http_request_duration_seconds",
            "Time from a request to the end of its response (a stream's included).",
            ["route", "method", "status"],
            buckets=_REQUEST_BUCKETS,
            registry=registry,
        )
        self._tokens = Counter(
            "rag_generation_tokens", "Tokens the language model wrote.", registry=registry
        )
        self._first_token = Histogram(
            "rag_generation_time_to_first_token_seconds",
            "Time from the start of a generation to its first token.",
            buckets=_FIRST_TOKEN_BUCKETS,
            registry=registry,
        )
        self._token_rate = Histogram(
            "rag_generation_tokens_per_second",
            "Tokens per second of each generation, after its first token.",
            buckets=_TOKEN_RATE_BUCKETS,
            registry=registry,
        )
        self._answers = Counter(
            "rag_answers",
            "Answers made, by outcome: generated, abstained, quoted (by design) or fallback "
            "(quoted because the model's answer failed the grounding check).",
            ["outcome"],
            registry=registry,
        )
        for outcome in ANSWER_OUTCOMES:
            self._answers.labels(outcome)
        self._chunks = Counter(
            "rag_ingest_chunks",
            "Chunks written by the jobs this service runs.",
            registry=registry,
        )
        self._job_seconds = Histogram(
            "rag_job_duration_seconds",
            "Time the jobs this service runs took, by kind and outcome.",
            ["kind", "status"],
            buckets=_JOB_BUCKETS,
            registry=registry,
        )
        self._scraped = ScrapedMetrics()
        registry.register(self._scraped)

    def render(self) -> bytes:
        """The registry in Prometheus' text format (``CONTENT_TYPE``): blocks while the
        scrape reads the jobs and the collections."""
        return generate_latest(self.registry)

    def watch(self, state: ServiceState, gate: GenerationGate) -> None:
        """Read the service's queue, jobs and collections at every scrape from now on."""
        self._scraped.state = state
        self._scraped.gate = gate

    # --- requests ---------------------------------------------------------------------

    def request_ended(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method, str(status))
        self._requests.labels(*labels).inc()
        self._request_seconds.labels(*labels).observe(seconds)

    # --- GenerationObserver -------------------------------------------------------------

    def first_token(self, seconds: float) -> None:
        self._first_token.observe(seconds)

    def generation_ended(
        self, *, tokens: int, seconds: float, first_token_seconds: float | None
    ) -> None:
        self._tokens.inc(tokens)
        if first_token_seconds is not None and tokens > 1:
            decoding = seconds - first_token_seconds
            if decoding > 0:
                self._token_rate.observe((tokens - 1) / decoding)

    # --- AnswerObserver -----------------------------------------------------------------

    def answered(self, prepared: PreparedAnswer, answer: Answer, quoting: bool) -> None:
        self._answers.labels(answer_outcome(answer, quoting=quoting)).inc()

    # --- JobObserver --------------------------------------------------------------------

    def chunks_written(self, count: int) -> None:
        self._chunks.inc(count)

    def job_ended(self, job: Job, status: Literal["done", "failed"], seconds: float) -> None:
        self._job_seconds.labels(job.kind, status).observe(seconds)


def answer_outcome(answer: Answer, *, quoting: bool) -> str:
    """One of ``ANSWER_OUTCOMES``."""
    if answer.abstained:
        return "abstained"
    if answer.extractive:
        return "quoted" if quoting else "fallback"
    return "generated"


class ScrapedMetrics(Collector):
    """Gauges read at each scrape: nothing until ``ServiceMetrics.watch``."""

    def __init__(self) -> None:
        self.state: ServiceState | None = None
        self.gate: GenerationGate | None = None

    def collect(self) -> Iterable[Metric]:
        if self.gate is not None:
            yield from self._generation(self.gate)
        if self.state is not None:
            yield from self._jobs(self.state)
            yield from self._collections(self.state)

    @staticmethod
    def _generation(gate: GenerationGate) -> Iterator[Metric]:
        waiting = GaugeMetricFamily(
            "rag_generation_queue_depth", "Requests waiting for a generation slot."
        )
        waiting.add_metric([], gate.waiting)
        held = GaugeMetricFamily(
            "rag_generation_slots_in_use", "Generation slots held by requests now."
        )
        held.add_metric([], gate.held)
        return iter((waiting, held))

    @staticmethod
    def _jobs(state: ServiceState) -> Iterator[Metric]:
        try:
            counts = state.jobs.counts()
        except Exception:
            log.warning("metrics: could not count the jobs", exc_info=True)
            return
        jobs = GaugeMetricFamily("rag_jobs", "Jobs in the queue, by status.", labels=["status"])
        for status, count in counts.items():
            jobs.add_metric([status], count)
        yield jobs

    @staticmethod
    def _collections(state: ServiceState) -> Iterator[Metric]:
        points = GaugeMetricFamily(
            "rag_collection_points",
            "Points (chunks) of each collection the service holds open.",
            labels=["collection"],
        )
        try:
            stores = state.open_stores()
        except Exception:
            log.warning("metrics: could not list the open collections", exc_info=True)
            stores = []
        for name, store in stores:
            try:
                points.add_metric([name], store.count(exact=False))
            except Exception:  # busy, or closed meanwhile: left out of this scrape
                log.warning("metrics: could not count collection %r", name, exc_info=True)
        yield points


class RequestMetrics:
    """Counts and times every HTTP request by its route's path template (``UNMATCHED`` when
    it matches none), its method (``other`` when not a standard one) and its status. Passes
    messages through as they come: a streamed response is timed to its end, never held."""

    def __init__(
        self, app: ASGIApp, *, metrics: ServiceMetrics, routes: Sequence[BaseRoute]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = [r for r in routes if isinstance(getattr(r, "path_format", None), str)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        asked = dict(scope)  # as it came: the router rewrites a mounted request's root_path
        status = 500  # what the server sends when the app fails before it answers
        answered = False

        async def send_counted(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = int(message["status"])
                answered = True
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        except asyncio.CancelledError:
            if not answered:
                status = CLIENT_CLOSED  # the client left before any answer: not a failure
            raise
        finally:
            method = scope["method"] if scope["method"] in STANDARD_METHODS else OTHER_METHOD
            self.metrics.request_ended(
                self._route(scope, asked), method, status, time.perf_counter() - started
            )

    def _route(self, scope: Scope, asked: Scope) -> str:
        """The path template of the route the router chose; else, as for a request refused
        before it reached the router (a missing key, a body too large), of the route that
        matches it as the router would match it: the first in full, else the first in part
        (another method)."""
        chosen = getattr(scope.get("route"), "path_format", None)
        if isinstance(chosen, str):
            return chosen
        partial: str | None = None
        for route in self.routes:
            match, _ = route.matches(asked)
            if match is Match.FULL:
                return route_template(route)
            if match is Match.PARTIAL and partial is None:
                partial = route_template(route)
        return partial or UNMATCHED


def route_template(route: BaseRoute) -> str:
    """A route's path template as the API documents it (``/v1/collections/{name}/map``; a
    mount's is ``/app/{path}``)."""
    template = getattr(route, "path_format", None)
    return template if isinstance(template, str) and template else UNMATCHED
