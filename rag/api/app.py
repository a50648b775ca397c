"""create_app(settings): the FastAPI service, with models loaded once in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from anyio import CapacityLimiter
from fastapi import Depends, FastAPI
from starlette.middleware.cors import CORSMiddleware

import rag
from rag.api.admission import GenerationGate, add_admission_handlers
from rag.api.deps import hash_key, require_key
from rag.api.docs_ui import add_docs
from rag.api.errors import add_error_handlers
from rag.api.metrics import RequestMetrics, ServiceMetrics
from rag.api.middleware import CollectionLeases, HostGuard, RequestGuard, normalize_origins
from rag.api.routes import explore, health, ingest, metrics, openai, query
from rag.api.routes.explore import start_map_job
from rag.api.state import ServiceState, collections_in_use
from rag.api.web import add_web_app
from rag.config import Settings
from rag.embedding import Embedder, build_embedder
from rag.generation import Generator, close_generator
from rag.job_runner import JobObserver, JobProgress, JobRunner
from rag.jobs import Job
from rag.query import build_generator

log = logging.getLogger(__name__)


def _run_jobs_in_process(state: ServiceState, observer: JobObserver) -> None:
    """Run the queued ingestion jobs on a thread of the service, on its open collections."""
    from ingest.jobs import JobExecutor

    execute = JobExecutor(
        state.settings,
        state.embedder,
        open_store=lambda name: state.store(name, create=True),
        switching=state.switching,
    )

    def execute_in_use(job: Job, progress: JobProgress) -> Mapping[str, Any]:
        with collections_in_use():  # a job's collection stays open while it runs
            report = execute(job, progress)
        if state.settings.map_refresh == "after_ingest":
            start_map_job(state, job.collection)
        return report

    state.runner = JobRunner(state.jobs, execute_in_use, observer=observer)
    state.runner.start()


def create_app(
    settings: Settings, *, embedder: Embedder | None = None, generator: Generator | None = None
) -> FastAPI:
    """Build the app. Tests may pass their own embedder and generator."""
    service_metrics = ServiceMetrics()  # the app's own registry: apps never share series

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        emb = embedder or build_embedder(settings)
        gen = generator or build_generator(settings)
        emb.warm_up()
        gen.warm_up()
        state = ServiceState(
            settings, emb, gen, answers=service_metrics.answered, generation=service_metrics
        )
        if settings.ingest_in_process:
            _run_jobs_in_process(state, service_metrics)
        if state.reranker is not None:
            state.reranker.warm_up()
        state.store()  # fail at start, not at the first request, if the store is unusable
        app.state.rag = state
        gate = app.state.generation = GenerationGate(
            concurrency=settings.generation_slots,
            queue=settings.generation_queue,
            timeout=settings.generation_queue_timeout_seconds,
        )
        app.state.search_limiter = CapacityLimiter(settings.search_concurrency)
        service_metrics.watch(state, gate)
        log.info("ready: collection %r, generator %s", settings.collection, gen.model_name)
        try:
            yield
        finally:
            gate.close()  # generations in flight stop at their next token
            state.close()
            if generator is None:  # one built here is closed here
                close_generator(gen)

    app = FastAPI(
        title="rag",
        version=rag.__version__,
        description="Local-first retrieval-augmented generation over your documents.",
        lifespan=lifespan,
        docs_url=None,  # add_docs serves them with local assets
        redoc_url=None,
    )
    app.state.key_hashes = [hash_key(k.get_secret_value()) for k in settings.api_keys]
    app.state.metrics = service_metrics

    add_error_handlers(app)
    add_guards(app, settings)
    add_admission_handlers(app)
    add_docs(app)
    add_web_app(app)
    app.include_router(health.router)
    keyed = [metrics.router, query.router, ingest.router, openai.router, explore.router]
    for router in keyed:
        app.include_router(router, dependencies=[Depends(require_key)])
    # Outermost: every request is counted, those the guards refuse included. The routers'
    # own routes are listed as well: how an app holds included routes varies by version.
    routes = [*app.router.routes, *(r for router in [health.router, *keyed] for r in router.routes)]
    app.add_middleware(RequestMetrics, metrics=service_metrics, routes=routes)
    return app


def add_guards(app: FastAPI, settings: Settings) -> None:
    """Outermost first: the Host check, CORS (when origins are set), then the origin, key and
    body-size checks, which all run before a body is read; innermost, the collection leases."""
    app.add_middleware(CollectionLeases)
    app.add_middleware(RequestGuard, settings=settings)
    if settings.cors_origins:
        origins = normalize_origins(settings.cors_origins)
        app.add_middleware(
            CORSMiddleware,
            allow_origins=["*"] if "*" in origins else origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["Retry-After"],
            max_age=600,
        )
    app.add_middleware(HostGuard, settings=settings)
