"""GET /v1/facets: attribute values for the UI's filters."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import IndexDep, ServiceDep
from app.openapi import errors
from app.schemas import Facets

router = APIRouter(prefix="/v1", tags=["catalogue"], responses=errors(503))


@router.get("/facets")
def get_facets(service: ServiceDep, index: IndexDep) -> Facets:
    return Facets(
        attributes=service.facets(index),
        count=len(index),
        model=service.model_id,
        targets=list(index.targets),
    )
