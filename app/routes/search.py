"""POST /v1/search/text and /v1/search/image."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from app.deps import JsonBody, MultipartBody, ServiceDep, SettingsDep
from app.errors import (
    InvalidUploadError,
    UnsupportedMediaTypeError,
    UploadTooLargeError,
)
from app.filters import parse_filters_json
from app.limits import upload_too_large
from app.openapi import BODY_ERRORS, errors
from app.schemas import (
    DEFAULT_K,
    MAX_K,
    SearchResponse,
    Target,
    TextSearchRequest,
)

router = APIRouter(
    prefix="/v1/search", tags=["search"], responses=errors(*BODY_ERRORS, 409, 415, 422, 503)
)

# Browsers and curl label uploads loosely; the bytes decide, these just rule out the obvious.
ACCEPTED_UPLOAD_TYPES = ("image/", "application/octet-stream")


@router.post("/text", dependencies=[JsonBody])
async def search_text(body: TextSearchRequest, service: ServiceDep) -> SearchResponse:
    """Text query: target "image" = text->image search, "text" = similar titles,
    "product" = products by photo and title together."""
    return await service.search_text(
        body.query, k=body.k, target=body.target, filters=body.filters or None
    )


@router.post("/image", dependencies=[MultipartBody])
async def search_image(
    service: ServiceDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="A JPEG, PNG, WebP or GIF (first frame) photo")],
    k: Annotated[int, Form(ge=1, le=MAX_K)] = DEFAULT_K,
    target: Annotated[Target, Form()] = "text",
    filters: Annotated[str | None, Form(description="JSON object, as in /v1/search/text")] = None,
) -> SearchResponse:
    """Photo query: target "text" = image->text search, "image" = similar photos,
    "product" = products by photo and title together."""
    content_type = (file.content_type or "").lower()
    if content_type and not content_type.startswith(ACCEPTED_UPLOAD_TYPES):
        raise UnsupportedMediaTypeError(
            f"file has content type {content_type!r}; upload an image (JPEG, PNG, WebP, GIF)"
        )
    limit = settings.limits.max_upload_bytes
    if file.size is not None and file.size > limit:
        raise UploadTooLargeError(upload_too_large(limit))
    data = await file.read()
    if not data:
        raise InvalidUploadError("file is empty; upload an image")
    return await service.search_image(data, k=k, target=target, filters=parse_filters_json(filters))
