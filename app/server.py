"""The HTTP server: uvicorn, with a timeout on reading a request's headers.

uvicorn closes an idle keep-alive connection, but a client that sends part of a request
line and then nothing holds its connection (and a file descriptor) forever. The
protocols here close a connection whose headers are not complete `header_timeout_s`
after it opened, or after the first byte of its next request. The body is timed by
`app.limits.BodySizeLimitMiddleware` (it is read by the app, not by the protocol).

Requests are parsed by httptools (llhttp, in C; `FASHION_SERVER__HTTP=h11` for uvicorn's
pure-Python parser) on uvloop: they take less CPU per request than h11 and asyncio's
loop, CPU that the encoder wants on a small machine.
"""

from __future__ import annotations

import asyncio
import json
from typing import ClassVar, Literal

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.settings import ServerSettings

HttpParser = Literal["auto", "httptools", "h11"]

_TIMEOUT_BODY = json.dumps({"detail": "the request headers did not arrive in time"}).encode()
REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    + f"content-length: {len(_TIMEOUT_BODY)}\r\n\r\n".encode()
    + _TIMEOUT_BODY
)


class HeaderTimer:
    """Closes the connection with a 408 when a request's headers take too long: armed
    when the connection opens and at the first byte of each request, disarmed when its
    headers are complete. Mixed into a uvicorn protocol (which sets `loop` and
    `transport`)."""

    header_timeout_s: ClassVar[float] = 10.0
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    _header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._on_timeout)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _waiting_for_headers(self) -> bool:
        raise NotImplementedError

    def _on_timeout(self) -> None:
        self._header_timer = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            self.transport.write(REQUEST_TIMEOUT)
            self.transport.close()


class H11HeaderTimeoutProtocol(HeaderTimer, H11Protocol):
    """uvicorn's h11 protocol with the header timeout."""

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

    def _waiting_for_headers(self) -> bool:
        return self.conn.their_state is h11.IDLE


class HttpToolsHeaderTimeoutProtocol(HeaderTimer, HttpToolsProtocol):
    """uvicorn's httptools protocol with the header timeout; the parser's callbacks
    say when a request begins and when its headers are complete."""

    _in_headers = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_headers = True  # nothing received yet counts as slow headers
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _waiting_for_headers(self) -> bool:
        return self._in_headers


def protocol_with_timeout(
    header_timeout_s: float, parser: HttpParser = "auto"
) -> type[HeaderTimer]:
    """The protocol class uvicorn instantiates per connection, with this timeout:
    httptools' ("auto") or h11's."""
    base: type[HeaderTimer] = H11HeaderTimeoutProtocol
    if parser != "h11":
        base = HttpToolsHeaderTimeoutProtocol
    return type(base.__name__, (base,), {"header_timeout_s": header_timeout_s})


def make_server(app: FastAPI, settings: ServerSettings) -> uvicorn.Server:
    """A uvicorn server for `app` with the settings' address and timeouts."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        http=protocol_with_timeout(settings.header_timeout_s, settings.http),  # type: ignore[arg-type]
        loop=settings.loop,
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
