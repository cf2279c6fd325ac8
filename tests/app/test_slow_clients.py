"""Through a real uvicorn server (in a thread, on 127.0.0.1), with each HTTP parser:
slow or silent clients are timed out, idle keep-alive connections closed, and an
oversized upload is answered with a 413 that urllib and `requests` can read."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from app_live import free_port
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.server import make_server, protocol_with_timeout
from app.settings import ServerSettings

MB = 1024 * 1024
WAIT_S = 30.0  # how long a test waits for an answer that must come much sooner


@contextmanager
def serving(app: FastAPI, **server: Any) -> Iterator[int]:
    """Serve `app` with these server settings in a thread; yields the port."""
    settings = ServerSettings(port=free_port(), log_level="warning", **server)
    uvicorn_server = make_server(app, settings)
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not uvicorn_server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        yield settings.port
    finally:
        uvicorn_server.should_exit = True
        thread.join(WAIT_S)


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(WAIT_S)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.fixture
def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    return make_app(server={"body_timeout_s": 0.5})


@pytest.fixture(params=["httptools", "h11"])
def parser(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_unfinished_headers_get_408_and_are_closed(app: FastAPI, parser: str) -> None:
    with (
        serving(app, http=parser, header_timeout_s=0.5) as port,
        socket.create_connection(("127.0.0.1", port)) as sock,
    ):
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        answer = _read_all(sock)  # a socket.timeout here: the connection was kept open
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"headers did not arrive in time" in answer


def test_slow_headers_of_a_second_request_get_408(app: FastAPI, parser: str) -> None:
    """The clock restarts at the first byte of each request on a kept-alive connection."""
    with (
        serving(app, http=parser, header_timeout_s=0.5, keep_alive_s=30.0) as port,
        socket.create_connection(("127.0.0.1", port)) as sock,
    ):
        sock.settimeout(WAIT_S)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = sock.recv(65536)
        time.sleep(0.8)  # idle longer than the header timeout: keep-alive's business
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        answer = _read_all(sock)
    assert first.startswith(b"HTTP/1.1 200 ")
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_the_default_parser_is_httptools() -> None:
    assert issubclass(protocol_with_timeout(1.0), HttpToolsProtocol)
    assert issubclass(protocol_with_timeout(1.0, "h11"), H11Protocol)


def test_a_silent_connection_is_closed(app: FastAPI, parser: str) -> None:
    with (
        serving(app, http=parser, header_timeout_s=0.5) as port,
        socket.create_connection(("127.0.0.1", port)) as sock,
    ):
        assert _read_all(sock).startswith(b"HTTP/1.1 408 ")


def test_a_stalled_body_gets_408(app: FastAPI, parser: str) -> None:
    head = (
        b"POST /v1/search/text HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    with serving(app, http=parser) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head + b'{"query": ')  # ...and nothing more
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"stopped arriving" in answer


def test_an_idle_keep_alive_connection_is_closed(app: FastAPI, parser: str) -> None:
    with (
        serving(app, http=parser, keep_alive_s=0.5) as port,
        socket.create_connection(("127.0.0.1", port)) as sock,
    ):
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = _read_all(sock)  # one answer, then the server closes
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1") == 1


def _multipart(data: bytes) -> tuple[bytes, str]:
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_urllib_reads_the_413_of_a_12_mb_upload(app: FastAPI, parser: str) -> None:
    """urllib sends the whole body before reading: without the lingering read it gets
    'connection reset by peer' instead of the answer."""
    body, content_type = _multipart(b"\0" * 12 * MB)
    with serving(app, http=parser) as port:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/search/image",
            data=body,
            headers={"Content-Type": content_type},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=WAIT_S)
    assert refused.value.code == 413
    assert "images up to 10.0 MB" in json.loads(refused.value.read())["detail"]


def test_requests_reads_the_413_of_a_12_mb_upload(app: FastAPI, parser: str) -> None:
    with serving(app, http=parser) as port:
        response = requests.post(
            f"http://127.0.0.1:{port}/v1/search/image",
            files={"file": ("big.jpg", b"\0" * 12 * MB, "image/jpeg")},
            timeout=WAIT_S,
        )
    assert response.status_code == 413
    assert "images up to 10.0 MB" in response.json()["detail"]
