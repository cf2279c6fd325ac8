"""Latency, throughput and memory of the search service, each beside the old path.

    python benchmarks/bench_service.py --index var/kagl-index --catalog ../shared/data/kagl/catalog.csv
    python benchmarks/bench_service.py --index var/index --search batched   # old encoder only

Starts two servers (`python -m app`) on free ports of 127.0.0.1 with the default model
(or --model) over the same index: the service as it ships (batched search, the pca
scan, OpenVINO or ONNX Runtime when installed, httptools on uvloop), and a baseline
with the old paths switched on: h11 on asyncio, `--search per-query` (FAISS, one
search per query) and `--encoder torch`,
both by default (`--search batched` or `--encoder auto` keep one of them new, to see
which gain is whose; `--baseline-env NAME=VALUE ...` makes the baseline the service
with only those settings changed). Each phase alternates between the two servers in short rounds,
so both see the same machine, and each figure is printed beside the baseline's with
their ratio. Queries are distinct titles of --catalog and the query-embedding cache is
off (--query-cache N turns it on), so every query is encoded and searched.
  - text->image, one client: p50 / p99;
  - image->text with a 60x80 JPEG upload, one client: p50 / p99;
  - text->image with N concurrent clients: queries/s, errors and the server's CPU time
    per query (user + system, all its threads);
  - each server's resident memory;
  - the seed's way of answering one text query (re-encode a gallery of photos, then
    rank; in this process, PyTorch), against our text->image p50.
The load average before and after says how busy the machine was.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from http_load import (
    concurrent_clients,
    cpu_seconds,
    distinct,
    free_port,
    jpeg_60x80,
    memory_mb,
    one_client,
    percentiles,
    start_server,
)

from models import load_model, read_catalog

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CATALOG = REPO / "data" / "sample" / "catalog.csv"
ROUNDS = 6  # alternations per phase


@dataclass
class Row:
    metric: str
    value: float
    baseline: float | None
    unit: str
    goal: str = ""
    ok: bool | None = None

    @property
    def ratio(self) -> float | None:
        """How many times better than the baseline (lower latency, higher q/s)."""
        if self.baseline is None or not self.value:
            return None
        return self.value / self.baseline if self.unit == "q/s" else self.baseline / self.value


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


def alternate(urls: dict[str, str], calls: list, rounds: int) -> dict[str, tuple[list[float], int]]:  # type: ignore[type-arg]
    """One client on each server in turn, `rounds` times over slices of calls (the same
    calls for both): {name: (latencies, errors)}."""
    out: dict[str, tuple[list[float], int]] = {name: ([], 0) for name in urls}
    size = max(1, len(calls) // rounds)
    for r in range(rounds):
        names = list(urls) if r % 2 == 0 else list(reversed(urls))
        for name in names:
            latencies, errors = one_client(urls[name], calls[r * size : (r + 1) * size])
            out[name] = (out[name][0] + latencies, out[name][1] + errors)
    return out


def measure(urls: dict[str, str], queries: list[str], photos: list[bytes], args) -> list[Row]:  # type: ignore[no-untyped-def]
    text_calls = [lambda c, q=q: c.text(q) for q in queries[: args.requests]]
    image_calls = [lambda c, p=p: c.image(p) for p in photos]
    image_calls = [image_calls[i % len(image_calls)] for i in range(args.requests)]
    warm = queries[-40:]
    for url in urls.values():  # first requests build lazily-made parts
        one_client(url, [lambda c, q=q: c.text(q) for q in warm] + image_calls[:10])
    print("one client, text -> image ...", file=sys.stderr)
    text = alternate(urls, text_calls, ROUNDS)
    print("one client, image -> text ...", file=sys.stderr)
    image = alternate(urls, image_calls, ROUNDS)
    print(f"{args.clients} clients, {args.seconds:.0f} s each ...", file=sys.stderr)
    many = {name: [0, 0, 0.0, 0.0] for name in urls}  # answered, errors, seconds, server CPU
    pool = queries[args.requests :]
    for r in range(ROUNDS // 2):
        names = list(urls) if r % 2 == 0 else list(reversed(urls))
        for name in names:
            cpu_before = cpu_seconds(args.pids[name])
            answered, errors, elapsed = concurrent_clients(
                urls[name], pool, args.clients, args.seconds / (ROUNDS // 2)
            )
            cpu = cpu_seconds(args.pids[name]) - cpu_before
            totals = many[name]
            many[name] = [
                totals[0] + answered,
                totals[1] + errors,
                totals[2] + elapsed,
                totals[3] + cpu,
            ]
    stats = {}
    for name in urls:
        t50, t99 = percentiles(text[name][0])
        i50, i99 = percentiles(image[name][0])
        qps = many[name][0] / many[name][2]
        stats[name] = {
            "t50": t50, "t99": t99, "terr": text[name][1],
            "i50": i50, "i99": i99, "ierr": image[name][1],
            "one_qps": len(text[name][0]) / sum(text[name][0]), "qps": qps,
            "errors": many[name][1], "cpu_ms": 1000 * many[name][3] / max(1, many[name][0]),
        }  # fmt: skip
    new, old = stats["new"], stats.get("baseline")

    def row(metric: str, key: str, unit: str, goal: str = "", ok: bool | None = None) -> Row:
        return Row(metric, new[key], None if old is None else old[key], unit, goal, ok)

    rows = [
        row("text->image p50, 1 client", "t50", "ms"),
        row("text->image p99, 1 client", "t99", "ms"),
        row("text->image errors, 1 client", "terr", "", "0", new["terr"] == 0),
        row("image->text p50 (60x80 JPEG)", "i50", "ms", "< 25", new["i50"] < 25),
        row("image->text p99 (60x80 JPEG)", "i99", "ms"),
        row("image->text errors, 1 client", "ierr", "", "0", new["ierr"] == 0),
        row("text queries/s, 1 client", "one_qps", "q/s"),
        row(f"text queries/s, {args.clients} clients", "qps", "q/s"),
        row(f"errors, {args.clients} clients", "errors", "", "0", new["errors"] == 0),
        row(f"server CPU per query, {args.clients} clients", "cpu_ms", "ms"),
    ]
    p50, qps = rows[0], rows[7]
    p50.goal, p50.ok = "< 12, >= 2x", p50.value < 12 and (p50.ratio or 0) >= 2
    qps.goal, qps.ok = ">= 400, >= 3x", qps.value >= 400 and (qps.ratio or 0) >= 3
    for name, url_pid in args.pids.items():
        rss, peak = memory_mb(url_pid)
        if name == "new":
            base = memory_mb(args.pids["baseline"])[0] if "baseline" in args.pids else None
            rows.append(Row("server RSS", rss, base, "MB", "< 1536", rss < 1536))
            rows.append(Row("server peak RSS", peak, None, "MB"))
    if args.gallery:
        print(f"seed's way: re-encoding a {args.gallery}-photo gallery ...", file=sys.stderr)
        seed_ms = 1000 * seed_baseline(args.model, args.catalog, args.gallery, queries)
        rows.append(Row(f"seed's way, 1 text query ({args.gallery} photos)", seed_ms, None, "ms"))
        rows.append(Row("  seed's way / our text->image p50", seed_ms / p50.value, None, "x"))
    return rows


def print_table(rows: list[Row], header: str) -> None:
    print(header)
    width = max(len(r.metric) for r in rows)
    print(f"{'metric':<{width}}  {'value':>9}  {'baseline':>9}  {'ratio':>6}  {'unit':<4}  goal")
    print("-" * (width + 52))
    for r in rows:
        base = "" if r.baseline is None else f"{r.baseline:,.1f}"
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}x"
        ok = "" if r.ok is None else (" yes" if r.ok else " NO")
        print(
            f"{r.metric:<{width}}  {r.value:>9,.1f}  {base:>9}  {ratio:>6}  {r.unit:<4}  {r.goal}{ok}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, required=True, help="index directory to serve")
    parser.add_argument("--model", type=Path, help="model artifact (default: the bundled one)")
    parser.add_argument("--catalog", type=Path, default=SAMPLE_CATALOG, help="query titles, photos")
    parser.add_argument("--search", choices=("per-query", "batched"), default="per-query",
                        help="the baseline's search (default per-query: FAISS, one per query)")  # fmt: skip
    parser.add_argument("--encoder", choices=("torch", "auto"), default="torch",
                        help="the baseline's encoder (default torch)")  # fmt: skip
    parser.add_argument("--no-baseline", action="store_true", help="measure the service only")
    parser.add_argument(
        "--baseline-env",
        nargs="+",
        metavar="NAME=VALUE",
        help="the baseline server's settings instead of the old paths: the service as it "
        "ships with only these changed (e.g. FASHION_MODEL__THREADS=0)",
    )
    parser.add_argument("--requests", type=int, default=300, help="one-client requests each")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--seconds", type=float, default=15.0, help="concurrent seconds each")
    parser.add_argument("--query-cache", type=int, default=0, help="query cache size (0: off)")
    parser.add_argument("--gallery", type=int, default=1000, help="seed's-way gallery (0: skip)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    args.index = args.index.resolve()  # the servers run in the repository root

    products = read_catalog(args.catalog).products
    queries = distinct([p.text for p in products], args.requests + 4000)
    photos = [
        jpeg_60x80(p.image) for p in random.Random(0).sample(products, min(50, len(products)))
    ]
    cache = {"FASHION_QUERY_CACHE__SIZE": str(args.query_cache)}
    envs = {"new": cache}
    if args.baseline_env:
        envs["baseline"] = {**cache, **dict(item.split("=", 1) for item in args.baseline_env)}
    elif not args.no_baseline:
        envs["baseline"] = {
            **cache,
            "FASHION_BATCHING__SEARCH": args.search,
            "FASHION_MODEL__RUNTIME": args.encoder,
            # the server's settings before httptools and uvloop
            "FASHION_SERVER__HTTP": "h11",
            "FASHION_SERVER__LOOP": "asyncio",
            **({"FASHION_INDEX__SCAN": "faiss"} if args.search == "per-query" else {}),
        }
    load_before = os.getloadavg()
    servers, urls = {}, {}
    try:
        for name, env in envs.items():
            port = free_port()
            print(f"starting the {name} server on port {port} ({env}) ...", file=sys.stderr)
            servers[name] = start_server(args.index, args.model, port, env)
            urls[name] = f"http://127.0.0.1:{port}"
        args.pids = {name: server.pid for name, server in servers.items()}
        rows = measure(urls, queries, photos, args)
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(timeout=30)
    load_after = os.getloadavg()
    baseline = envs.get("baseline", {})
    header = (
        f"index {args.index}; baseline: {json.dumps(baseline)}\n"
        f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}; "
        f"{os.cpu_count()} CPUs"
    )
    print_table(rows, header)
    if args.json:
        payload = {
            "index": str(args.index),
            "baseline_settings": baseline,
            "load_average_before_after": [load_before[0], load_after[0]],
            "rows": [{**asdict(r), "ratio": r.ratio} for r in rows],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
