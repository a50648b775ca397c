"""Every error the API sends, in one body: ``{"error": {message, type, param, code}}``.

The REST routes and the OpenAI-compatible routes share OpenAI's error shape, so OpenAI clients
and our own show the same thing; the REST routes leave ``code`` null. The keys and their order
are part of the API (``rag.api.schemas.ErrorResponse`` documents them). Nothing else in
``rag.api`` builds an error body: handlers and the SSE stream call ``error_body``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.errors import (
    CollectionMismatchError,
    InvalidInputError,
    ModelError,
    NotFoundError,
    NotReadyError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RagError,
    StoreLockedError,
)

log = logging.getLogger(__name__)

INVALID_REQUEST = "invalid_request_error"
NOT_FOUND = "not_found_error"
SERVER_ERROR = "server_error"
# pydantic names the member of a union that failed in an error's location: "str",
# "list[ContentPart]", "function-after[refuse_unsafe_characters(), str]". Not a field.
_UNION_MEMBER = re.compile(r"(str|int|float|bool|none|[\w-]+\[.*\])", re.DOTALL)


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


def _encodable(text: str | None) -> str | None:
    """``text`` with any lone surrogate escaped (``\\ud800``), so the body encodes as UTF-8
    whatever the request held."""
    if text is None:
        return None
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_body(
    message: str, kind: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The one error body, for a JSON response or an SSE error event."""
    return {
        "error": {
            "message": _encodable(message),
            "type": kind,
            "param": _encodable(param),
            "code": code,
        }
    }


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
        return 404, NOT_FOUND
    if isinstance(exc, CollectionMismatchError | NotReadyError):
        return 409, "conflict_error"
    if isinstance(exc, StoreLockedError | ModelError):
        return 503, "service_unavailable"
    return 500, SERVER_ERROR


def validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """The first problem of an invalid request, as a message and the field it names.

    A value our own validators refused (``rag.api.schemas.Text``) comes first: for a field
    that takes a string or a list, the other union member's type mismatch says nothing.
    """
    errors = exc.errors()
    first = next((e for e in errors if e.get("type") == "value_error"), errors[0] if errors else {})
    extra = first.get("type") == "extra_forbidden"
    loc = [
        str(p)
        for p in first.get("loc", ())
        if p != "body" and (extra or not (isinstance(p, str) and _UNION_MEMBER.fullmatch(p)))
    ]
    field = ".".join(loc) or None
    detail = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    message = f"{field}: {detail}" if field else f"invalid body: {detail}"
    return message, field


def http_error_kind(status: int) -> str:
    """The error type of a bare HTTP status (an unknown route, a wrong method, a limit)."""
    if status == 404:
        return NOT_FOUND
    return SERVER_ERROR if status >= 500 else INVALID_REQUEST


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

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Starlette's own refusals (no such route: 404, wrong method: 405) in our shape."""
        response = error_response(
            exc.status_code, str(exc.detail), http_error_kind(exc.status_code)
        )
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        """A bug, answered with a 500 in the same shape (the server logs its traceback)."""
        log.error("request failed: %r", exc)
        return error_response(500, "internal server error", SERVER_ERROR)
