"""create_app(settings): the FastAPI service, with models loaded once in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

import rag
from rag.api.deps import AuthError, hash_key, require_key
from rag.api.openai_service import OpenAIError, error_body
from rag.api.routes import health, ingest, openai, query
from rag.api.state import ServiceState
from rag.config import Settings
from rag.embedding import Embedder, build_embedder
from rag.errors import (
    CollectionMismatchError,
    InvalidInputError,
    ModelError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RagError,
    StoreLockedError,
)
from rag.generation import Generator
from rag.jobs import JobRunner
from rag.query import build_generator

log = logging.getLogger(__name__)


def _error(status: int, message: str, kind: str, param: str | None = None) -> JSONResponse:
    # The OpenAI error shape, so OpenAI clients and our own show the same thing.
    body = {"error": {"message": message, "type": kind, "param": param, "code": None}}
    return JSONResponse(status_code=status, content=body)


def _status(exc: RagError) -> tuple[int, str]:
    if isinstance(exc, PayloadTooLargeError):
        return 413, "invalid_request_error"
    if isinstance(exc, PermissionDeniedError):
        return 403, "permission_error"
    if isinstance(exc, InvalidInputError):
        return 400, "invalid_request_error"
    if isinstance(exc, NotFoundError):
        return 404, "not_found_error"
    if isinstance(exc, CollectionMismatchError):
        return 409, "conflict_error"
    if isinstance(exc, StoreLockedError | ModelError):
        return 503, "service_unavailable"
    return 500, "server_error"


def _warm_up(component: object) -> None:
    """Load a model now, so that the first request does not wait for it."""
    warm_up = getattr(component, "warm_up", None)
    if warm_up is not None:
        warm_up()


def _run_jobs_in_process(state: ServiceState) -> None:
    """Run the queued ingestion jobs on a thread of the service, on its open collections."""
    from ingest.jobs import JobExecutor

    execute = JobExecutor(
        state.settings,
        state.embedder,
        open_store=lambda name: state.store(name, create=True),
        switching=state.switching,
    )
    state.runner = JobRunner(state.jobs, execute)
    state.runner.start()


def create_app(
    settings: Settings, *, embedder: Embedder | None = None, generator: Generator | None = None
) -> FastAPI:
    """Build the app. Tests may pass their own embedder and generator."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        emb = embedder or build_embedder(settings)
        gen = generator or build_generator(settings)
        emb.warm_up()
        _warm_up(gen)
        state = ServiceState(settings, emb, gen)
        if settings.ingest_in_process:
            _run_jobs_in_process(state)
        _warm_up(state.reranker)
        state.store()  # fail at start, not at the first request, if the store is unusable
        app.state.rag = state
        log.info("ready: collection %r, generator %s", settings.collection, gen.model_name)
        try:
            yield
        finally:
            state.close()

    app = FastAPI(
        title="rag",
        version=rag.__version__,
        description="Local-first retrieval-augmented generation over your documents.",
        lifespan=lifespan,
    )
    app.state.key_hashes = [hash_key(k.get_secret_value()) for k in settings.api_keys]

    @app.exception_handler(RagError)
    async def rag_error(_: Request, exc: RagError) -> JSONResponse:
        status, kind = _status(exc)
        if status >= 500:
            log.error("request failed: %s", exc)
        return _error(status, str(exc), kind, getattr(exc, "field", None))

    @app.exception_handler(OpenAIError)
    async def openai_error(_: Request, exc: OpenAIError) -> JSONResponse:
        body = error_body(str(exc), exc.kind, exc.param, exc.code)
        return JSONResponse(status_code=exc.status, content=body)

    @app.exception_handler(AuthError)
    async def auth_error(_: Request, exc: AuthError) -> JSONResponse:
        response = _error(401, str(exc), "invalid_request_error")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        field = ".".join(loc) or None
        message = f"{field}: {first.get('msg', 'invalid request')}" if field else "invalid body"
        return _error(422, message, "invalid_request_error", field)

    app.include_router(health.router)
    app.include_router(query.router, dependencies=[Depends(require_key)])
    app.include_router(ingest.router, dependencies=[Depends(require_key)])
    app.include_router(openai.router, dependencies=[Depends(require_key)])
    return app
