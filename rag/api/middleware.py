"""What every request meets before the app reads its body: the Host check, the origin check of
a browser's request that changes something, the bearer key, and the body's size limit.

Pure ASGI middleware (no ``BaseHTTPMiddleware``): the body is never read here, only counted
while the app reads it, so a refused request costs its headers and at most the limit of its
body. Refusals are sent in the API's one error shape (``rag.api.errors.error_body``).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.api.deps import hash_key, key_refusal
from rag.api.errors import INVALID_REQUEST, error_body
from rag.api.state import collections_in_use
from rag.config import Settings

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
UNSPECIFIED_ADDRESSES = ("0.0.0.0", "::", "")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PROTECTED_PREFIX = "/v1"
UPLOAD_ROUTE = ("POST", "/v1/documents")
MULTIPART_FRAMING_BYTES = 65_536
"""Allowed on top of RAG_MAX_UPLOAD_BYTES for the multipart boundaries and part headers."""


def _headers(scope: Scope) -> dict[str, str]:
    """The request headers, lower-case names, the last value of a repeated one."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def _refuse(
    send: Send, status: int, message: str, kind: str = INVALID_REQUEST, **headers: str
) -> None:
    response = JSONResponse(status_code=status, content=error_body(message, kind))
    # The unread body, if any, is not worth reading: the server closes instead of draining it.
    response.headers.update({"Connection": "close", **headers})
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def host_name(header: str) -> str:
    """The host of a Host header (``name``, ``name:port``, ``[v6]:port``), lower-case, without
    a trailing dot."""
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        value = value[1:end] if end > 0 else ""
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def allowed_host_names(settings: Settings) -> frozenset[str] | None:
    """The names the API answers to (None: any): loopback, the bound host, RAG_ALLOWED_HOSTS."""
    if "*" in settings.allowed_hosts:
        return None
    names = {*LOOPBACK_NAMES, *(host_name(h) for h in settings.allowed_hosts)}
    if settings.host not in UNSPECIFIED_ADDRESSES:
        names.add(host_name(settings.host))
    return frozenset(names)


def normalize_origins(origins: Iterable[str]) -> list[str]:
    return [o.strip().rstrip("/").lower() for o in origins if o.strip()]


class HostGuard:
    """Refuses (400) a request whose Host header names a host the API does not serve: a web
    page cannot reach a loopback service through a rebound DNS name of its own."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.names = allowed_host_names(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.names is not None:
            header = _headers(scope).get("host")
            if header is not None and host_name(header) not in self.names:
                await _refuse(
                    send,
                    400,
                    f"this service does not answer to host {host_name(header)!r}: add it to "
                    "RAG_ALLOWED_HOSTS",
                )
                return
        await self.app(scope, receive, send)


class RequestGuard:
    """Before the app reads a body: refuses a cross-origin request that changes something
    (403) unless RAG_CORS_ORIGINS allows its origin, a /v1 request without a valid key (401)
    when keys are set, and a body over its limit (413): at once by its Content-Length, or as
    soon as a body of unknown length has streamed past the limit, which ends the read."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.key_hashes = [hash_key(k.get_secret_value()) for k in settings.api_keys]
        self.origins = normalize_origins(settings.cors_origins)
        self.body_limit = settings.max_request_bytes
        self.upload_limit = settings.max_upload_bytes + MULTIPART_FRAMING_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        method: str = scope["method"]
        path: str = scope["path"]
        refusal = self._origin_refusal(method, headers) or self._key_refusal(method, path, headers)
        if refusal is not None:
            status, message = refusal
            extra = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
            await _refuse(send, status, message, _kind(status), **extra)
            return
        upload = (method, path) == UPLOAD_ROUTE
        limit = self.upload_limit if upload else self.body_limit
        setting = "RAG_MAX_UPLOAD_BYTES" if upload else "RAG_MAX_REQUEST_BYTES"
        too_large = f"the request body is over the limit of {limit} bytes ({setting})"
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                await _refuse(send, 400, "invalid Content-Length header")
                return
            if int(length) > limit:
                await _refuse(send, 413, too_large)
                return
        await self._counted(scope, receive, send, limit, too_large)

    def _origin_refusal(self, method: str, headers: dict[str, str]) -> tuple[int, str] | None:
        if method not in UNSAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is None:
            if headers.get("sec-fetch-site") == "cross-site":
                return 403, "cross-site requests are refused: see RAG_CORS_ORIGINS"
            return None
        normalized = origin.strip().rstrip("/").lower()
        if "*" in self.origins or normalized in self.origins:
            return None
        own = urlsplit(normalized).netloc
        if own and own == headers.get("host", "").strip().lower():
            return None  # a page this service served, such as /docs
        return 403, f"requests from origin {origin!r} are refused: see RAG_CORS_ORIGINS"

    def _key_refusal(
        self, method: str, path: str, headers: dict[str, str]
    ) -> tuple[int, str] | None:
        """The same check as ``rag.api.deps.require_key``, made before the body is read."""
        if not self.key_hashes or method == "OPTIONS":
            return None
        if path != PROTECTED_PREFIX and not path.startswith(PROTECTED_PREFIX + "/"):
            return None
        scheme, _, key = headers.get("authorization", "").strip().partition(" ")
        refusal = key_refusal(self.key_hashes, key.strip() if scheme.lower() == "bearer" else None)
        return None if refusal is None else (401, refusal)

    async def _counted(
        self, scope: Scope, receive: Receive, send: Send, limit: int, too_large: str
    ) -> None:
        """Run the app with a receive that counts body bytes. Past the limit it answers 413
        itself (unless the app has begun its answer), tells the app the client is gone, and
        drops whatever the app sends after that."""
        received = 0
        cut = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, cut
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut = True
                    if not started:
                        await _refuse(send, 413, too_large)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if cut:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted_receive, guarded_send)


def _kind(status: int) -> str:
    return "permission_error" if status == 403 else INVALID_REQUEST


class CollectionLeases:
    """Keeps the collections a request opens from being closed (``RAG_MAX_OPEN_COLLECTIONS``)
    until its response, streamed or not, has been sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with collections_in_use():
            await self.app(scope, receive, send)
