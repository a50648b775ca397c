from __future__ import annotations

from fastapi import APIRouter

from rag.api.deps import StateDep
from rag.api.schemas import HealthResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse)
def healthz(state: StateDep) -> HealthResponse:
    """Ready when the models are loaded and the default collection is open. No key needed."""
    store = state.store()
    return HealthResponse(
        status="ok",
        collection=store.collection,
        chunks=store.count(),
        embedding_model=state.embedder.model_name,
        generator=state.generator.model_name,
    )
