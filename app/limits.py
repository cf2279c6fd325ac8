"""Refuse oversized request bodies without reading them into memory.

A declared Content-Length over the limit is refused before a byte of the body is read;
a body without one (chunked) is counted while it streams in and refused as soon as it
passes the limit. Either way the client gets 413 with a message naming the limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

UPLOAD_PATH = "/v1/search/image"
# Multipart framing and the small form fields (k, target, filters) around the file.
MULTIPART_OVERHEAD = 64 * 1024


class _BodyTooLarge(Exception):
    pass


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


class BodySizeLimitMiddleware:
    """`limit_for(scope)` gives the largest body accepted for a request, in bytes."""

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[Scope], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _content_length(scope)
        if declared == -1:
            await _answer(send, 400, "the Content-Length header is not a valid number")
            return
        if declared is not None and declared > limit:
            await _answer(send, 413, _too_large(scope, limit))
            return

        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the app says about the cut-off body, ours is the answer
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _answer(send, 413, _too_large(scope, limit))


def _content_length(scope: Scope) -> int | None:
    """The declared body length, None when absent, -1 when malformed."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return -1
            return length if length >= 0 else -1
    return None


def _too_large(scope: Scope, limit: int) -> str:
    if scope.get("path") == UPLOAD_PATH:
        allowed = max(limit - MULTIPART_OVERHEAD, 0)
        return f"the upload is too large: images up to {_megabytes(allowed)} are accepted"
    return f"the request body is too large: at most {_megabytes(limit)} is accepted here"


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def body_limits(*, max_upload_bytes: int, max_json_bytes: int) -> Callable[[Scope], int]:
    """The limit per request: room for one image on the upload route, JSON elsewhere."""

    def limit_for(scope: Scope) -> int:
        if scope.get("path") == UPLOAD_PATH:
            return max_upload_bytes + MULTIPART_OVERHEAD
        return max_json_bytes

    return limit_for
