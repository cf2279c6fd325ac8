"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.deps import MetricsDep
from app.errors import NotReadyError
from app.openapi import errors
from app.schemas import Health, Readiness
from indexer.errors import IndexerError

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> Health:
    """The process is alive and answering."""
    return Health(status="ok")


@router.get("/readyz", responses=errors(503))
def readyz(request: Request) -> Readiness:
    """200 once the model and the index are loaded, else 503."""
    service = getattr(request.app.state, "service", None)
    if service is None:
        raise NotReadyError("not ready: the model and the index are not loaded yet")
    # An index on a server (Milvus) says whether it can answer now; files always can.
    check_available = getattr(service.holder.current, "check_available", None)
    if check_available is not None:
        try:
            check_available()
        except IndexerError as exc:
            raise NotReadyError(f"not ready: {exc}") from exc
    return Readiness(status="ready", model=service.model_id, products=len(service.holder.current))


@router.get("/metrics", response_class=Response)
def metrics(metrics: MetricsDep) -> Response:
    """Prometheus text format."""
    return Response(metrics.render(), media_type=metrics.content_type)
