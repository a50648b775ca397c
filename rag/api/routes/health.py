from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path, PureWindowsPath

from fastapi import APIRouter

from rag.api.deps import StateDep
from rag.api.schemas import HealthResponse
from rag.api.state import ServiceState

router = APIRouter(tags=["health"])


def model_label(name: str) -> str:
    """A model as /healthz shows it: a package or server model name as it is, a file or folder
    by its last component only, so that no server path is shown."""
    path = Path(name).expanduser()
    windows = PureWindowsPath(name)
    if windows.is_absolute() or windows.drive:
        return windows.name or "local"
    if path.is_absolute() or name.startswith((".", "~")) or path.exists():
        return path.name or "local"
    return name


@cache
def _health_threads() -> ThreadPoolExecutor:
    """Threads of the health check's own, so that it answers while every thread of the shared
    pool serves (or waits in) other requests."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="healthz")


@router.get("/healthz", response_model=HealthResponse)
async def healthz(state: StateDep) -> HealthResponse:
    """Ready when the models are loaded and the default collection is open. No key needed,
    so it shows no file path: models given as paths appear by their last component."""
    return await asyncio.get_running_loop().run_in_executor(_health_threads(), _health, state)


def _health(state: ServiceState) -> HealthResponse:
    store = state.store()
    return HealthResponse(
        status="ok",
        collection=store.collection,
        chunks=store.count(),
        embedding_model=model_label(state.embedder.model_name),
        generator=model_label(state.generator.model_name),
    )
