"""The service as a real uvicorn process on 127.0.0.1, started like a user starts it."""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from app_fakes import ADMIN_TOKEN, image_bytes
from app_live import LiveServer, free_port, serve_command, server_env, start_server

from indexer import build_index
from models import JointModel, read_catalog

MB = 1024 * 1024


def test_every_endpoint(live_server: LiveServer, sample_catalog: Path) -> None:
    product = read_catalog(sample_catalog).products[0]
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json()["products"] == 1000
        page = client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        for asset in ("/static/app.js", "/static/url-state.js", "/static/app.css"):
            assert client.get(asset).status_code == 200
        assert "gender" in client.get("/v1/facets").json()["attributes"]
        text = client.post("/v1/search/text", json={"query": "black jacket", "k": 4})
        assert text.status_code == 200 and len(text.json()["results"]) == 4
        photo = client.post(
            "/v1/search/image", files={"file": ("p.jpg", product.image.read_bytes(), "image/jpeg")}
        )
        assert photo.status_code == 200 and len(photo.json()["results"]) == 10
        assert client.get(f"/v1/products/{product.id}").json()["id"] == product.id
        image = client.get(f"/v1/products/{product.id}/image")
        assert image.headers["content-type"] == "image/jpeg"
        assert client.get("/v1/products/nope").status_code == 404
        assert client.get("/openapi.json").status_code == 200
        metrics = client.get("/metrics").text
        assert 'endpoint="/v1/search/text",method="POST",status="200"' in metrics


@pytest.mark.parametrize(
    ("path", "kwargs", "status"),
    [
        ("/v1/search/text", {"json": {"query": ""}}, 422),
        ("/v1/search/text", {"json": {"query": "a", "k": 500}}, 422),
        ("/v1/search/text", {"json": {"query": "a", "filters": {"nope": "x"}}}, 422),
        (
            "/v1/search/text",
            {"content": b"{bad", "headers": {"Content-Type": "application/json"}},
            400,
        ),
        ("/v1/search/text", {"content": b"hello", "headers": {"Content-Type": "text/plain"}}, 415),
        ("/v1/search/image", {"files": {"file": ("x.jpg", b"not an image", "image/jpeg")}}, 422),
        (
            "/v1/search/image",
            {"files": {"file": ("x.jpg", image_bytes()[:200], "image/jpeg")}},
            422,
        ),
        ("/v1/search/image", {"json": {"file": "x"}}, 415),
    ],
)
def test_bad_input_gets_a_4xx_with_a_message(
    live_server: LiveServer, path: str, kwargs: dict, status: int
) -> None:
    response = httpx.post(live_server.url + path, timeout=30, **kwargs)
    assert response.status_code == status
    assert isinstance(response.json()["detail"], str) and response.json()["detail"]


def _raw_request(port: int, head: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head)
    return sock


def _read_status(sock: socket.socket) -> str:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0].decode()


def test_declared_200_mb_upload_is_refused_before_the_body(live_server: LiveServer) -> None:
    head = (
        f"POST /v1/search/image HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {200 * MB}\r\n\r\n"
    ).encode()
    with _raw_request(live_server.port, head) as sock:
        # Not one byte of the body is sent: the answer must come anyway.
        assert _read_status(sock) == "HTTP/1.1 413 Request Entity Too Large"


def test_streamed_200_mb_upload_is_cut_off(live_server: LiveServer) -> None:
    head = (
        b"POST /v1/search/image HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    part = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (256 * 1024, b"\0" * 256 * 1024)
    sent = 0
    with _raw_request(live_server.port, head + b"%x\r\n%s\r\n" % (len(part), part)) as sock:
        while sent < 200 * MB:
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered
            try:
                sock.sendall(chunk)
            except OSError:
                break
            sent += 256 * 1024
        status = _read_status(sock)
    assert sent < 30 * MB
    assert status == "HTTP/1.1 413 Request Entity Too Large"


def test_admin_auth(live_server: LiveServer) -> None:
    url = f"{live_server.url}/v1/admin/reload"
    assert httpx.post(url).status_code == 401
    assert httpx.post(url, headers={"Authorization": "Bearer nope"}).status_code == 403
    right = httpx.post(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60)
    assert right.status_code == 200 and right.json()["products"] == 1000


def test_healthcheck_entrypoint(live_server: LiveServer) -> None:
    """What the Docker HEALTHCHECK runs."""
    command = [sys.executable, "-m", "app.healthcheck", "--url", f"{live_server.url}/readyz"]
    assert subprocess.run(command, capture_output=True, timeout=60, check=False).returncode == 0
    closed = [
        sys.executable,
        "-m",
        "app.healthcheck",
        "--url",
        f"http://127.0.0.1:{free_port()}/readyz",
    ]
    result = subprocess.run(closed, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1 and "not ready" in result.stderr


def test_reload_during_concurrent_queries(
    tmp_path: Path,
    tiny_model_dir: Path,
    tiny_model: JointModel,
    tiny_catalog,  # type: ignore[no-untyped-def]
    subprocess_env: dict[str, str],
) -> None:
    """uvicorn --factory, configured only by environment variables; the index is rebuilt
    and reloaded three times while 8 clients query without pause: no request fails."""
    served = tmp_path / "index"
    build_index(tiny_catalog(30), tiny_model, served, progress=False)
    port = free_port()
    env = server_env(
        subprocess_env,
        FASHION_MODEL__PATH=str(tiny_model_dir),
        FASHION_INDEX__PATH=str(served),
        FASHION_INDEX__DEVICE="cpu",
        FASHION_MODEL__DEVICE="cpu",
        FASHION_ADMIN__TOKEN=ADMIN_TOKEN,
    )
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "app.main:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]
    server = start_server(command, env=env, log=tmp_path / "server.log", port=port)
    statuses: list[int] = []
    stop = threading.Event()

    def query_loop(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                target = "text" if n % 2 else "image"
                response = client.post(
                    "/v1/search/text", json={"query": f"blue shirt {n}", "k": 5, "target": target}
                )
                statuses.append(response.status_code)

    threads = [threading.Thread(target=query_loop, args=(n,)) for n in range(8)]
    try:
        for thread in threads:
            thread.start()
        for version in range(1, 4):
            build_index(
                tiny_catalog(30 + 10 * version),
                tiny_model,
                served,
                progress=False,
            )
            reload = httpx.post(
                f"{server.url}/v1/admin/reload",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                timeout=60,
            )
            assert reload.status_code == 200, reload.text
            assert reload.json()["products"] == 30 + 10 * version
            time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        code = server.stop()
    assert code == 0, server.output()
    assert len(statuses) > 20
    assert set(statuses) == {200}, server.output()


def test_serve_without_an_index_builds_the_sample_and_prints_its_url(
    tmp_path: Path,
    tiny_model_dir: Path,
    tiny_model: JointModel,
    tiny_catalog,  # type: ignore[no-untyped-def]
    subprocess_env: dict[str, str],
) -> None:
    """The README's first command: no --index; the sample index is built on first start
    (a small stand-in catalogue here, through the same settings) and the URL printed."""
    port = free_port()
    env = server_env(
        subprocess_env,
        FASHION_INDEX__CATALOG=str(tiny_catalog(20)),
        FASHION_INDEX__SAMPLE_DIR=str(tmp_path / "sample-index"),
    )
    command = serve_command("--model", str(tiny_model_dir), "--port", str(port))
    server = start_server(command, env=env, log=tmp_path / "server.log", port=port)
    try:
        assert httpx.get(f"{server.url}/readyz").json()["products"] == 20
    finally:
        assert server.stop() == 130  # Ctrl+C, after a graceful shutdown
    assert f"on http://127.0.0.1:{port}" in server.output()
    assert (tmp_path / "sample-index" / tiny_model.model_id / "CURRENT").is_file()
