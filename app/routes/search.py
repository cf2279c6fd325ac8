"""POST /v1/search/text and /v1/search/image."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import ValidationError

from app.deps import JsonBody, MultipartBody, ServiceDep, SettingsDep
from app.errors import (
    InvalidFiltersError,
    InvalidUploadError,
    UnsupportedMediaTypeError,
    UploadTooLargeError,
    describe_validation_errors,
)
from app.schemas import (
    DEFAULT_K,
    FILTERS_ADAPTER,
    MAX_K,
    SearchResponse,
    Target,
    TextSearchRequest,
)

router = APIRouter(prefix="/v1/search", tags=["search"])

# Browsers and curl label uploads loosely; the bytes decide, these just rule out the obvious.
ACCEPTED_UPLOAD_TYPES = ("image/", "application/octet-stream")


@router.post("/text", dependencies=[JsonBody])
async def search_text(body: TextSearchRequest, service: ServiceDep) -> SearchResponse:
    """Text query: target "image" = text->image search, "text" = similar titles."""
    return await service.search_text(
        body.query, k=body.k, target=body.target, filters=body.filters or None
    )


@router.post("/image", dependencies=[MultipartBody])
async def search_image(
    service: ServiceDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="JPEG, PNG, WebP, GIF (first frame), ...")],
    k: Annotated[int, Form(ge=1, le=MAX_K)] = DEFAULT_K,
    target: Annotated[Target, Form()] = "text",
    filters: Annotated[str | None, Form(description="JSON object, as in /v1/search/text")] = None,
) -> SearchResponse:
    """Photo query: target "text" = image->text search, "image" = similar photos."""
    content_type = (file.content_type or "").lower()
    if content_type and not content_type.startswith(ACCEPTED_UPLOAD_TYPES):
        raise UnsupportedMediaTypeError(
            f"file has content type {content_type!r}; upload an image (JPEG, PNG, WebP, GIF)"
        )
    limit = settings.limits.max_upload_bytes
    if file.size is not None and file.size > limit:
        raise UploadTooLargeError(
            f"the upload is too large: images up to {limit} bytes are accepted"
        )
    data = await file.read()
    if not data:
        raise InvalidUploadError("file is empty; upload an image")
    return await service.search_image(data, k=k, target=target, filters=_parse_filters(filters))


def _parse_filters(raw: str | None) -> dict[str, list[str]] | None:
    if raw is None or not raw.strip():
        return None
    try:
        return FILTERS_ADAPTER.validate_json(raw) or None
    except ValidationError as exc:
        problems = describe_validation_errors(
            [{**e, "loc": ("filters", *e["loc"])} for e in exc.errors()]
        )
        raise InvalidFiltersError(
            f'filters must be a JSON object like {{"gender": "Men"}}: {problems}'
        ) from exc
