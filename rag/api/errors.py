"""Every error the API sends, in one body: ``{"error": {message, type, param, code}}``.

The REST routes and the OpenAI-compatible routes share OpenAI's error shape, so OpenAI clients
and our own show the same thing; the REST routes leave ``code`` null. The keys and their order
are part of the API (``rag.api.schemas.ErrorResponse`` documents them). Nothing else in
``rag.api`` builds an error body: handlers and the SSE stream call ``error_body``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

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

log = logging.getLogger(__name__)

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


class OpenAIError(Exception):
    """A refusal in OpenAI's terms: HTTP status, error type, the offending parameter, a code."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.param = param
        self.code = code


class AuthError(Exception):
    """Missing or wrong API key: 401 with ``WWW-Authenticate: Bearer``."""


def error_body(
    message: str, kind: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The one error body, for a JSON response or an SSE error event."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(
    status: int, message: str, kind: str, param: str | None = None, code: str | None = None
) -> JSONResponse:
    return JSONResponse(status_code=status, content=error_body(message, kind, param, code))


def rag_error_status(exc: RagError) -> tuple[int, str]:
    """The HTTP status and error type of one of our own errors (subclasses before bases)."""
    if isinstance(exc, PayloadTooLargeError):
        return 413, INVALID_REQUEST
    if isinstance(exc, PermissionDeniedError):
        return 403, "permission_error"
    if isinstance(exc, InvalidInputError):
        return 400, INVALID_REQUEST
    if isinstance(exc, NotFoundError):
        return 404, "not_found_error"
    if isinstance(exc, CollectionMismatchError):
        return 409, "conflict_error"
    if isinstance(exc, StoreLockedError | ModelError):
        return 503, "service_unavailable"
    return 500, SERVER_ERROR


def validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """The first problem of an invalid request, as a message and the field it names."""
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    field = ".".join(loc) or None
    message = f"{field}: {first.get('msg', 'invalid request')}" if field else "invalid body"
    return message, field


def add_error_handlers(app: FastAPI) -> None:
    """Render our errors, OpenAI refusals, key failures and invalid bodies as error bodies."""

    @app.exception_handler(RagError)
    async def rag_error(_: Request, exc: RagError) -> JSONResponse:
        status, kind = rag_error_status(exc)
        if status >= 500:
            log.error("request failed: %s", exc)
        return error_response(status, str(exc), kind, getattr(exc, "field", None))

    @app.exception_handler(OpenAIError)
    async def openai_error(_: Request, exc: OpenAIError) -> JSONResponse:
        return error_response(exc.status, str(exc), exc.kind, exc.param, exc.code)

    @app.exception_handler(AuthError)
    async def auth_error(_: Request, exc: AuthError) -> JSONResponse:
        response = error_response(401, str(exc), INVALID_REQUEST)
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, field = validation_message(exc)
        return error_response(422, message, INVALID_REQUEST, field)
