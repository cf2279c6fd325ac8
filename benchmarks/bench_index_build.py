"""Build an index of a catalogue with a model, then measure it; prints a table.

    python benchmarks/bench_index_build.py --catalog ../shared/data/kagl/catalog.csv
    python benchmarks/bench_index_build.py --catalog data/sample/catalog.csv --model DIR

Reports: encoding throughput (products/s, a cold build: the embedding cache is empty),
the full build time, a rebuild with a warm cache, the loaded index's memory against the
raw vectors, and the latency of one text query (encoding excluded) with and without a
filter, searched as the service searches (one thread per query).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from indexer import build_index, open_index
from models import load_model, read_catalog


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def percentiles(times_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(times_ms)
    return ordered[len(ordered) // 2], ordered[int(0.9 * (len(ordered) - 1))]


def query_latency(index, queries: np.ndarray, filters: dict | None) -> tuple[float, float]:
    times = []
    for row in queries:
        started = time.perf_counter()
        index.search_texts(row[None, :], 10, filters=filters)
        times.append((time.perf_counter() - started) * 1000)
    return percentiles(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--model", type=Path, help="model artifact (default: the bundled one)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, help="index directory (default: a temporary one)")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    model = load_model(args.model, device=args.device)
    products = read_catalog(args.catalog).products
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-index-")) / "index"
    cold = build_index(args.catalog, model, out, batch_size=args.batch_size)
    warm = build_index(args.catalog, model, out, batch_size=args.batch_size, progress=False)
    texts = [p.text for p in products[: args.queries]]
    queries = model.encode_texts(texts)
    before = rss_bytes()
    index = open_index(out, device="cpu", expected_model_id=model.model_id)
    loaded = rss_bytes() - before
    raw = len(index.targets) * len(index) * model.embed_dim * 4  # one set per target
    gender = products[0].attributes.get("gender")
    rows = [
        ("products", f"{len(index):,}"),
        ("cold build (encode + index + publish)", f"{cold.seconds:.1f} s"),
        ("encoding throughput", f"{len(products) / cold.seconds:.1f} products/s"),
        ("rebuild, warm cache", f"{warm.seconds:.1f} s"),
        ("loaded index memory", f"{loaded / 1e6:.1f} MB = {loaded / raw:.2f} x raw vectors"),
        (
            "text query, no filter, p50 / p90",
            "{:.2f} / {:.2f} ms".format(*query_latency(index, queries, None)),
        ),
    ]
    if gender:
        latency = query_latency(index, queries, {"gender": gender})
        rows.append(
            (f"text query, gender={gender}, p50 / p90", "{:.2f} / {:.2f} ms".format(*latency))
        )
    index.close()
    print(f"\n{args.catalog} with model {model.model_id[:12]} on {model.device}\n")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
