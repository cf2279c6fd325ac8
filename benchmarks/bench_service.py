"""Latency, throughput and memory of the search service, and the seed's way as a baseline.

    python benchmarks/bench_service.py --index var/index            # default model
    python benchmarks/bench_service.py --index var/index --model runs/lite0/best \
        --clients 16 --seconds 20 --json bench.json
    python benchmarks/bench_service.py --url http://127.0.0.1:8000 --index var/index

Starts `fashion-retrieval serve` on a free port of 127.0.0.1 (or measures a running
server with --url, in which case the server's memory is not measured unless --pid is
given), then measures over HTTP, like a client:
  - text->image, one client: p50 / p99 latency;
  - image->text with a 60x80 JPEG upload, one client: p50 / p99;
  - text->image with N concurrent clients: queries/s, errors, and the ratio to one client;
  - the server's resident memory (RSS, and its peak);
  - the seed's way of answering one text query: encode every gallery photo, then the
    query, then rank (no index), on a gallery of --gallery products; printed with its
    ratio to our p50.
Prints a table with the issue's targets (measured on 2 CPU cores with the default model
and the 41k-product development catalogue).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from models import load_model, open_image, read_catalog

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CATALOG = REPO / "data" / "sample" / "catalog.csv"


@dataclass
class Row:
    metric: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(index: Path, model: Path | None, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "app", "--index", str(index), "--port", str(port)]
    if model is not None:
        command += ["--model", str(model)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"the server exited:\n{process.stderr.read().decode() if process.stderr else ''}"
            )
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


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1000.0
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def one_client(url: str, calls: list, repeat: int) -> tuple[list[float], int]:  # type: ignore[type-arg]
    client = Client(url)
    latencies, errors = [], 0
    for i in range(repeat):
        status, seconds = calls[i % len(calls)](client)
        latencies.append(seconds)
        errors += status != 200
    client.close()
    return latencies, errors


def concurrent_clients(
    url: str, queries: list[str], clients: int, seconds: float
) -> tuple[int, int, float]:
    """-> (answered, errors, elapsed seconds) of `clients` threads querying for `seconds`."""
    answered, errors = [0] * clients, [0] * clients
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def run(n: int) -> None:
        client = Client(url)
        rng = random.Random(n)
        start.wait()
        while time.perf_counter() < stop_at[0]:
            try:
                status, _ = client.text(rng.choice(queries))
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


def seed_baseline(
    model_path: Path | None, catalog: Path, gallery: int, queries: list[str]
) -> float:
    """Seconds for one text query the seed's way: re-encode the whole gallery, then rank."""
    model = load_model(model_path, device="cpu")
    products = read_catalog(catalog).products[:gallery]
    timings = []
    for query in queries[:3]:
        started = time.perf_counter()
        photos = model.encode_images([p.image for p in products])
        vector = model.encode_texts([query])[0]
        np.argsort(-(photos @ vector))[:10]
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def jpeg_60x80(path: Path) -> bytes:
    buffer = io.BytesIO()
    open_image(path).resize((60, 80)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, required=True, help="index directory to serve")
    parser.add_argument("--model", type=Path, help="model artifact (default: the bundled one)")
    parser.add_argument("--url", help="measure this running server instead of starting one")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, for RSS")
    parser.add_argument(
        "--catalog", type=Path, default=SAMPLE_CATALOG, help="query titles and photos"
    )
    parser.add_argument(
        "--requests", type=int, default=300, help="one-client requests (default 300)"
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--seconds", type=float, default=15.0, help="concurrent run length")
    parser.add_argument("--gallery", type=int, default=1000, help="seed baseline gallery size")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)

    products = read_catalog(args.catalog).products
    rng = random.Random(0)
    queries = [p.text for p in rng.sample(products, min(500, len(products)))]
    photos = [jpeg_60x80(p.image) for p in rng.sample(products, min(50, len(products)))]
    server = None
    if args.url:
        url, pid = args.url.rstrip("/"), args.pid
    else:
        port = free_port()
        print(f"starting the server on port {port} (index {args.index}) ...", file=sys.stderr)
        server = start_server(args.index, args.model, port)
        url, pid = f"http://127.0.0.1:{port}", server.pid
    try:
        rows = measure(url, pid, queries, photos, args)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return 0 if all(r.ok is not False for r in rows) else 1


def measure(
    url: str, pid: int | None, queries: list[str], photos: list[bytes], args: argparse.Namespace
) -> list[Row]:
    text_calls = [lambda c, q=q: c.text(q) for q in queries]
    image_calls = [lambda c, p=p: c.image(p) for p in photos]
    one_client(url, text_calls, 30)  # warm up: first requests load lazily-built parts
    one_client(url, image_calls, 10)
    print("one client, text -> image ...", file=sys.stderr)
    text_lat, text_err = one_client(url, text_calls, args.requests)
    print("one client, image -> text ...", file=sys.stderr)
    image_lat, image_err = one_client(url, image_calls, args.requests)
    text_p50, text_p99 = percentiles(text_lat)
    image_p50, image_p99 = percentiles(image_lat)
    one_qps = len(text_lat) / sum(text_lat)
    print(f"{args.clients} clients for {args.seconds:.0f} s ...", file=sys.stderr)
    answered, errors, elapsed = concurrent_clients(url, queries, args.clients, args.seconds)
    many_qps = answered / elapsed
    rows = [
        Row("text->image p50, 1 client", text_p50, "ms", "< 25", text_p50 < 25),
        Row("text->image p99, 1 client", text_p99, "ms", "< 100", text_p99 < 100),
        Row("text->image errors, 1 client", text_err, "", "0", text_err == 0),
        Row("image->text p50 (60x80 JPEG)", image_p50, "ms", "< 60", image_p50 < 60),
        Row("image->text p99 (60x80 JPEG)", image_p99, "ms"),
        Row("image->text errors, 1 client", image_err, "", "0", image_err == 0),
        Row("text queries/s, 1 client", one_qps, "q/s"),
        Row(f"text queries/s, {args.clients} clients", many_qps, "q/s", ">= 150", many_qps >= 150),
        Row("  ratio to 1 client", many_qps / one_qps, "x", ">= 3", many_qps / one_qps >= 3),
        Row(f"errors, {args.clients} clients", errors, "", "0", errors == 0),
    ]
    if pid is not None:
        rss, peak = memory_mb(pid)
        rows += [
            Row("server RSS", rss, "MB", "< 1536", rss < 1536),
            Row("server peak RSS", peak, "MB"),
        ]
    print(
        f"seed baseline: re-encoding a {args.gallery}-product gallery per query ...",
        file=sys.stderr,
    )
    seed_s = seed_baseline(args.model, args.catalog, args.gallery, queries)
    rows += [
        Row(f"seed's way, 1 text query ({args.gallery} gallery)", seed_s * 1000, "ms"),
        Row("  seed's way / our text->image p50", seed_s * 1000 / text_p50, "x"),
    ]
    return rows


def print_table(rows: list[Row]) -> None:
    width = max(len(r.metric) for r in rows)
    print(f"{'metric':<{width}}  {'value':>10}  {'unit':<4}  {'target':<8}  ok")
    print("-" * (width + 32))
    for r in rows:
        value = f"{r.value:,.1f}" if isinstance(r.value, float) else str(r.value)
        ok = "" if r.ok is None else ("yes" if r.ok else "NO")
        print(f"{r.metric:<{width}}  {value:>10}  {r.unit:<4}  {r.target:<8}  {ok}")


if __name__ == "__main__":
    sys.exit(main())
