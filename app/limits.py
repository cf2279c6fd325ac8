"""Refuse oversized or stalled request bodies without reading them into memory.

A declared Content-Length over the limit is refused before the app sees the request; a
body without one (chunked) is counted while it streams in and refused as soon as it
passes the limit. Either way the client gets 413 with a message naming the limit. A body
that stops arriving for `body_timeout_s` gets 408.

Before a 413 the rest of the body is read and dropped, up to twice the limit and for a
few seconds at most (nginx's "lingering close"): a client that sends its whole body
before reading the answer (Python's urllib, `requests`) would otherwise see "connection
reset by peer" instead of the 413, since closing a socket with unread data resets it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

UPLOAD_PATH = "/v1/search/image"
# Multipart framing and the small form fields (k, target, filters) around the file.
MULTIPART_OVERHEAD = 64 * 1024
LINGER_S = 3.0
LINGER_FACTOR = 2  # read and drop a refused body up to this many times the limit


class _Refused(Exception):
    """Raised into the app's receive() when the body is refused; the app's own answer
    to the cut-off body is dropped and ours sent instead."""


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


class BodySizeLimitMiddleware:
    """`limit_for(scope)` gives the largest body accepted for a request, in bytes;
    `body_timeout_s` the longest wait for the next piece of a body."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit_for: Callable[[Scope], int],
        body_timeout_s: float = 30.0,
        linger_s: float = LINGER_S,
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.body_timeout_s = body_timeout_s
        self.linger_s = linger_s

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
            if declared <= LINGER_FACTOR * limit and not _expects_continue(scope):
                await self._discard(receive, declared)
            await _answer(send, 413, _too_large(scope, limit))
            return

        received = 0
        body_done = not (declared or _is_chunked(scope))  # h11: no length, no chunks, no body
        refusal: tuple[int, str] | None = None
        started = False

        async def guarded_receive() -> Message:
            nonlocal received, body_done, refusal
            if body_done:
                return await receive()  # waiting for a disconnect is not timed
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout_s)
            except TimeoutError:
                refusal = (408, _too_slow(self.body_timeout_s))
                raise _Refused() from None
            if message["type"] != "http.request":
                body_done = True
                return message
            received += len(message.get("body", b""))
            body_done = not message.get("more_body", False)
            if received > limit:
                refusal = (413, _too_large(scope, limit))
                raise _Refused()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refusal is not None:
                return  # whatever the app says about the cut-off body, ours is the answer
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if refusal is None:
                raise
        if refusal is not None and not started:
            if refusal[0] == 413 and not body_done:
                await self._discard(receive, LINGER_FACTOR * limit - received)
            await _answer(send, *refusal)

    async def _discard(self, receive: Receive, budget: int) -> None:
        """Read and drop up to `budget` more bytes of the body, for `linger_s` at most."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.linger_s
        dropped = 0
        while dropped <= budget:
            try:
                message = await asyncio.wait_for(receive(), deadline - loop.time())
            except TimeoutError:
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
            dropped += len(message.get("body", b""))


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


def _is_chunked(scope: Scope) -> bool:
    return any(name == b"transfer-encoding" for name, _ in scope.get("headers", ()))


def _expects_continue(scope: Scope) -> bool:
    """The client waits for a go-ahead before sending its body: it sends none if refused."""
    return any(
        name == b"expect" and value.lower() == b"100-continue"
        for name, value in scope.get("headers", ())
    )


def upload_too_large(max_upload_bytes: int) -> str:
    """The one message for an image over the limit (a body the middleware stops, or a
    file part the route measures: the body limit leaves room for the form around it)."""
    return f"the upload is too large: images up to {_megabytes(max_upload_bytes)} are accepted"


def _too_large(scope: Scope, limit: int) -> str:
    if scope.get("path") == UPLOAD_PATH:
        return upload_too_large(max(limit - MULTIPART_OVERHEAD, 0))
    return f"the request body is too large: at most {_megabytes(limit)} is accepted here"


def _too_slow(timeout_s: float) -> str:
    return f"the request body stopped arriving: no data for {timeout_s:g} s"


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
