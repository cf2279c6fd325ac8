"""The HTTP server: uvicorn, with a timeout on reading a request's headers.

uvicorn closes an idle keep-alive connection, but a client that sends part of a request
line and then nothing holds its connection (and a file descriptor) forever. The protocol
here closes a connection whose headers are not complete `header_timeout_s` after it
opened, or after the first byte of its next request. The body is timed by
`app.limits.BodySizeLimitMiddleware` (it is read by the app, not by the protocol).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.settings import ServerSettings

_TIMEOUT_BODY = json.dumps({"detail": "the request headers did not arrive in time"}).encode()
REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    + f"content-length: {len(_TIMEOUT_BODY)}\r\n\r\n".encode()
    + _TIMEOUT_BODY
)


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request headers are too slow."""

    header_timeout_s: ClassVar[float] = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a byte is closed too

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            if self._header_timer is None:
                self._arm()  # the first bytes of a request: its headers are now on the clock
        else:
            self._disarm()  # the headers are in

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._on_timeout)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _on_timeout(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.write(REQUEST_TIMEOUT)
            self.transport.close()


def protocol_with_timeout(header_timeout_s: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class uvicorn instantiates per connection, with this timeout."""
    return type(
        "HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": header_timeout_s}
    )


def make_server(app: FastAPI, settings: ServerSettings) -> uvicorn.Server:
    """A uvicorn server for `app` with the settings' address and timeouts."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        http=protocol_with_timeout(settings.header_timeout_s),
        timeout_keep_alive=settings.keep_alive_s,  # type: ignore[arg-type]  # a float works
    )
    return uvicorn.Server(config)


def run_server(app: FastAPI, settings: ServerSettings) -> bool:
    """Serve until Ctrl+C or SIGTERM; False when the server could not start (e.g. the
    port is taken: uvicorn has logged why). After Ctrl+C uvicorn shuts down gracefully,
    then re-raises the signal: KeyboardInterrupt reaches the caller."""
    server = make_server(app, settings)
    try:
        server.run()
    except SystemExit:  # uvicorn's way out when it cannot start (it exits 3)
        if server.started:
            raise
        return False
    return server.started
