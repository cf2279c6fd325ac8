"""Dependencies of the routes, as `Annotated` aliases.

They are `async def` although none awaits: FastAPI runs a plain `def` dependency in its
thread pool, two thread hops per request for nothing on the search routes.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from app.errors import (
    AdminDisabledError,
    ForbiddenError,
    NotReadyError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from app.metrics import Metrics
from app.openapi import BEARER
from app.protocols import SearchIndex
from app.reloader import Reloader
from app.search import SearchService
from app.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_service(request: Request) -> SearchService:
    service = getattr(request.app.state, "service", None)
    if service is None:
        raise NotReadyError("the service is still loading the model and the index; retry shortly")
    return service


async def get_reloader(request: Request) -> Reloader:
    await get_service(request)
    return request.app.state.reloader


async def lease_index(
    service: Annotated[SearchService, Depends(get_service)],
) -> AsyncIterator[SearchIndex]:
    """The index this request uses from start to end, whatever reloads happen meanwhile."""
    with service.holder.lease() as index:
        yield index


async def require_admin(
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> None:
    expected = settings.admin_token
    if expected is None:
        raise AdminDisabledError(
            "admin endpoints are off: no admin token is configured (set FASHION_ADMIN__TOKEN)"
        )
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token:
        raise UnauthorizedError("send the admin token as `Authorization: Bearer <token>`")
    if not secrets.compare_digest(token.encode(), expected.encode()):
        raise ForbiddenError("the admin token is wrong")


def _content_type_checker(
    expected: str, hint: str
) -> Callable[[Request], Coroutine[Any, Any, None]]:
    async def check(request: Request) -> None:
        content_type = request.headers.get("content-type", "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type != expected and not (
            expected == "application/json" and media_type.endswith("+json")
        ):
            got = f"got {media_type!r}" if media_type else "no Content-Type header was sent"
            raise UnsupportedMediaTypeError(f"send {hint} with Content-Type {expected} ({got})")

    return check


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ServiceDep = Annotated[SearchService, Depends(get_service)]
ReloaderDep = Annotated[Reloader, Depends(get_reloader)]
IndexDep = Annotated[SearchIndex, Depends(lease_index)]
AdminDep = Depends(require_admin)
JsonBody = Depends(_content_type_checker("application/json", "a JSON body"))
MultipartBody = Depends(
    _content_type_checker("multipart/form-data", "the image as form field `file`")
)
