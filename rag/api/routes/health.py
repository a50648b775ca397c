from __future__ import annotations

from pathlib import Path, PureWindowsPath

from fastapi import APIRouter

from rag.api.deps import StateDep
from rag.api.schemas import HealthResponse

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


@router.get("/healthz", response_model=HealthResponse)
def healthz(state: StateDep) -> HealthResponse:
    """Ready when the models are loaded and the default collection is open. No key needed,
    so it shows no file path: models given as paths appear by their last component."""
    store = state.store()
    return HealthResponse(
        status="ok",
        collection=store.collection,
        chunks=store.count(),
        embedding_model=model_label(state.embedder.model_name),
        generator=model_label(state.generator.model_name),
    )
