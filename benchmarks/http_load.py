"""HTTP load for the service benchmarks: a keep-alive client, one-client latency runs,
concurrent clients, and starting `fashion-retrieval serve` with extra settings."""

from __future__ import annotations

import http.client
import io
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from models import open_image

REPO = Path(__file__).resolve().parents[1]


class Client:
    """One keep-alive HTTP connection (http.client: little client CPU per request)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)

    def post(self, path: str, body: bytes, content_type: str) -> tuple[int, float]:
        """-> (status, seconds)."""
        started = time.perf_counter()
        self.connection.request("POST", path, body, {"Content-Type": content_type})
        response = self.connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started

    def text(self, query: str, k: int = 10) -> tuple[int, float]:
        body = json.dumps({"query": query, "k": k, "target": "image"}).encode()
        return self.post("/v1/search/text", body, "application/json")

    def image(self, jpeg: bytes, k: int = 10) -> tuple[int, float]:
        boundary = uuid.uuid4().hex
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="q.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode() + jpeg
        body += (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="k"\r\n\r\n{k}'
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="target"\r\n\r\ntext'
            f"\r\n--{boundary}--\r\n"
        ).encode()
        return self.post("/v1/search/image", body, f"multipart/form-data; boundary={boundary}")

    def close(self) -> None:
        self.connection.close()


Call = Callable[[Client], tuple[int, float]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    index: Path, model: Path | None, port: int, env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """`python -m app` on 127.0.0.1:port with extra FASHION_* settings; waits for /readyz."""
    command = [sys.executable, "-m", "app", "--index", str(index), "--port", str(port)]
    if model is not None:
        command += ["--model", str(model)]
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": path, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = process.stderr.read().decode() if process.stderr else ""
            raise SystemExit(f"the server exited:\n{log}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("the server was not ready within 10 minutes")


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, peak RSS) of a process, in MB (Linux)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, in seconds (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1000.0
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def one_client(url: str, calls: list[Call]) -> tuple[list[float], int]:
    """Each call once, in order, on one connection: (latencies, errors)."""
    client = Client(url)
    latencies, errors = [], 0
    for call in calls:
        status, seconds = call(client)
        latencies.append(seconds)
        errors += status != 200
    client.close()
    return latencies, errors


def concurrent_clients(
    url: str, queries: list[str], clients: int, seconds: float
) -> tuple[int, int, float]:
    """-> (answered, errors, elapsed seconds) of `clients` threads sending text queries
    for `seconds`, each its own slice of `queries` in turn (no query twice while there
    are enough)."""
    answered, errors = [0] * clients, [0] * clients
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def run(n: int) -> None:
        client = Client(url)
        mine = queries[n::clients] or queries
        start.wait()
        while time.perf_counter() < stop_at[0]:
            try:
                status, _ = client.text(mine[answered[n] % len(mine)])
            except OSError:
                status = 0
                client.close()
                client = Client(url)
            answered[n] += 1
            errors[n] += status != 200
        client.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    return sum(answered), sum(errors), time.perf_counter() - began


def jpeg_60x80(path: Path) -> bytes:
    buffer = io.BytesIO()
    open_image(path).resize((60, 80)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def distinct(texts: list[str], count: int, seed: int = 0) -> list[str]:
    """`count` distinct texts in a seeded order (numbered copies when there are fewer)."""
    unique = sorted(set(texts))
    random.Random(seed).shuffle(unique)
    out = list(unique[:count])
    copy = 2
    while len(out) < count:
        out += [f"{text} {copy}" for text in unique[: count - len(out)]]
        copy += 1
    return out
