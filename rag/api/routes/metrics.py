"""``GET /metrics``: the service's metrics in Prometheus' text format (``rag.api.metrics``)."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Request, Response

from rag.api.metrics import CONTENT_TYPE, ServiceMetrics
from rag.api.schemas import ErrorResponse

router = APIRouter(tags=["health"], responses={401: {"model": ErrorResponse}})


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "The metrics."}},
)
async def metrics(request: Request) -> Response:
    """Requests, generation, answers, ingestion and collection sizes, in Prometheus' text
    format. Needs the key when keys are set. Read on a worker thread: a scrape counts the jobs
    and the open collections' points."""
    service_metrics: ServiceMetrics = request.app.state.metrics
    body = await to_thread.run_sync(service_metrics.render)
    return Response(body, media_type=CONTENT_TYPE)
