"""FastAPI dependencies: the service state and bearer-key authentication."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Annotated

from anyio import CapacityLimiter
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rag.api.admission import GenerationGate
from rag.api.errors import AuthError
from rag.api.state import ServiceState


# The dependencies are coroutines: they only read the app, and a plain function would take a
# thread of the shared pool for each request, which a busy pool makes every request wait for.
async def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.rag
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


async def get_gate(request: Request) -> GenerationGate:
    gate: GenerationGate = request.app.state.generation
    return gate


GateDep = Annotated[GenerationGate, Depends(get_gate)]


async def get_search_limiter(request: Request) -> CapacityLimiter:
    limiter: CapacityLimiter = request.app.state.search_limiter
    return limiter


SearchLimiterDep = Annotated[CapacityLimiter, Depends(get_search_limiter)]
"""Threads for searches and embeddings (RAG_SEARCH_CONCURRENCY): a request waits for one
asynchronously, holding no thread of the shared pool."""

_bearer = HTTPBearer(auto_error=False)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def require_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Keys are kept only as SHA-256 hashes and compared in constant time."""
    refusal = key_refusal(
        request.app.state.key_hashes, None if credentials is None else credentials.credentials
    )
    if refusal is not None:
        raise AuthError(refusal)


def key_refusal(hashes: Sequence[str], key: str | None) -> str | None:
    """Why a bearer ``key`` (None: none was sent) is refused, or None when it is accepted or
    no keys are set."""
    if not hashes:
        return None
    if not key:
        return "missing API key: send 'Authorization: Bearer <key>'"
    offered = hash_key(key)
    if not any(hmac.compare_digest(offered, h) for h in hashes):
        return "invalid API key"
    return None
