"""The service's errors and the one place that turns errors into HTTP responses.

Every error answers `{"detail": "<what is wrong>"}` with a fitting status; nothing
reaches the client as a traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from indexer.errors import IndexUnavailableError, InvalidFilterError, UnknownAttributeError
from models.errors import ImageDecodeError
from models.images import ImageTooLargeError

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base class of the service's own errors; `status_code` is the HTTP answer."""

    status_code = 400
    headers: ClassVar[dict[str, str] | None] = None


class NotReadyError(ServiceError):
    status_code = 503


class ProductNotFoundError(ServiceError):
    status_code = 404


class InvalidFiltersError(ServiceError):
    status_code = 422


class TargetUnavailableError(ServiceError):
    """The served index has no vectors for the target asked (product, on an old index)."""

    status_code = 409


class InvalidUploadError(ServiceError):
    status_code = 422


class UnsupportedMediaTypeError(ServiceError):
    status_code = 415


class UploadTooLargeError(ServiceError):
    status_code = 413


class AdminDisabledError(ServiceError):
    status_code = 404


class UnauthorizedError(ServiceError):
    status_code = 401
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": "Bearer"}


class ForbiddenError(ServiceError):
    status_code = 403


class ReloadError(ServiceError):
    """The newest published index could not be swapped in; the old one keeps serving."""

    status_code = 409


def _location(loc: Sequence[Any]) -> str:
    """("body", "filters", "gender") -> "filters.gender"."""
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:] or parts
    return ".".join(parts)


def describe_validation_errors(errors: Sequence[dict[str, Any]]) -> str:
    """One line per problem: `field: what is wrong`."""
    messages = []
    for error in errors:
        if error.get("type") == "json_invalid":
            loc = error.get("loc") or ("body",)
            what = "request body" if loc[0] == "body" else str(loc[0])
            reason = (error.get("ctx") or {}).get("error", "")
            messages.append(f"{what} is not valid JSON: {reason}".rstrip(": "))
            continue
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        messages.append(f"{_location(error.get('loc', ()))}: {message}")
    return "; ".join(messages)


def _json_error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _on_service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return _json_error(exc.status_code, str(exc), exc.headers)


async def _on_image_decode_error(request: Request, exc: Exception) -> JSONResponse:
    # `reason` leaves out the source ("uploaded bytes"): the client knows what it sent.
    reason = getattr(exc, "reason", None) or str(exc)
    reason = re.sub(r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>", "", reason)  # Pillow's repr noise
    if isinstance(exc, ImageTooLargeError):
        return _json_error(422, f"the image is too large: {reason}")
    return _json_error(422, f"file is not a readable image: {reason}")


async def _on_bad_filter(request: Request, exc: Exception) -> JSONResponse:
    return _json_error(422, str(exc))


async def _on_index_unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("index unavailable: %s", exc)
    return _json_error(503, f"the index is unavailable, try again shortly: {exc}")


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    status = 400 if any(e.get("type") == "json_invalid" for e in errors) else 422
    return _json_error(status, describe_validation_errors(errors))


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return _json_error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))


async def _on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return _json_error(500, "internal error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    """Map every error the routes can raise to a JSON answer."""
    app.add_exception_handler(ServiceError, _on_service_error)
    app.add_exception_handler(ImageDecodeError, _on_image_decode_error)
    app.add_exception_handler(UnknownAttributeError, _on_bad_filter)
    app.add_exception_handler(InvalidFilterError, _on_bad_filter)
    app.add_exception_handler(IndexUnavailableError, _on_index_unavailable)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected_error)
