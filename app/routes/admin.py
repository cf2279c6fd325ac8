"""POST /v1/admin/reload (bearer token; off when no token is configured)."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import AdminDep, ReloaderDep
from app.openapi import BODY_ERRORS, errors
from app.schemas import ReloadResponse

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[AdminDep],
    responses=errors(*BODY_ERRORS, 401, 403, 404, 409, 503),
)


@router.post("/reload")
async def reload_index(reloader: ReloaderDep) -> ReloadResponse:
    """Swap in the newest published index without failing requests in flight."""
    return await reloader.reload()
