"""What the OpenAPI document says about errors: one model, `{"detail": str}`, declared
for every status a route can answer with, and the bearer scheme of the admin routes.

Routers pass `errors(...)` as their `responses`; declaring 422 there also replaces
FastAPI's list-shaped default validation error, which this service never sends.
"""

from __future__ import annotations

from typing import Any

from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field


class ErrorResponse(BaseModel):
    """Every error the service answers with."""

    detail: str = Field(description="What is wrong, and how to fix it when the client can.")


WHY = {
    400: "Malformed request: invalid JSON, or a bad Content-Length header.",
    401: "No admin token was sent (`Authorization: Bearer <token>`).",
    403: "The admin token is wrong.",
    404: "No such product, or admin endpoints are off (no admin token configured).",
    405: "The path does not take this method.",
    408: "The request body stopped arriving (FASHION_SERVER__BODY_TIMEOUT_S).",
    409: "The served index cannot answer this: another model, no product vectors, "
    "or no newer index to reload.",
    413: "The request body is over the limit (FASHION_LIMITS__MAX_UPLOAD_BYTES for photos, "
    "FASHION_LIMITS__MAX_JSON_BYTES for JSON).",
    415: "Wrong Content-Type: JSON for text search, multipart/form-data for photos.",
    422: "A field is invalid, a filter names an unknown attribute, or the file is not a "
    "JPEG, PNG, WebP or GIF photo within the pixel budget.",
    503: "The model and the index are still loading.",
}

# Statuses any request with a body can get from the body-limit middleware.
BODY_ERRORS = (400, 408, 413)

# The admin routes' token, as the OpenAPI document shows it; `app.deps` checks it.
BEARER = HTTPBearer(auto_error=False, description="The admin token (FASHION_ADMIN__TOKEN).")


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses` for a router or route: each status with ErrorResponse and why."""
    return {status: {"model": ErrorResponse, "description": WHY[status]} for status in statuses}
