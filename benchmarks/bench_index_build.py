"""Build an index of a catalogue, beside the old build path, then measure it; prints a table.

    python benchmarks/bench_index_build.py --catalog ../shared/data/kagl/catalog.csv
    python benchmarks/bench_index_build.py --catalog ../shared/data/kagl/catalog.csv --limit 3000

Cold builds (empty embedding cache) with the build as it ships (the ONNX Runtime encoder
when installed, photos decoded in worker processes while the model encodes) and, in the
same run, with the old path (`--encoder torch`, decoding in process), each into its own
temporary directory; --limit takes the catalogue's first N products (both builds get the
same), --no-baseline skips the old path. Then, for the new build: a rebuild with a warm
cache, the loaded index's memory against the raw vectors, and the latency of one text
query (encoding excluded) with and without a filter, with the pca scan the service
uses and with FAISS.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from indexer import build_index, open_index
from indexer.decode_pool import default_workers
from models import read_catalog
from models.encoders import load_encoder


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def percentiles(times_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(times_ms)
    return ordered[len(ordered) // 2], ordered[int(0.9 * (len(ordered) - 1))]


def query_latency(index, queries: np.ndarray, filters: dict | None) -> tuple[float, float]:  # type: ignore[no-untyped-def, type-arg]
    times = []
    for row in queries:
        started = time.perf_counter()
        index.search_texts(row[None, :], 10, filters=filters)
        times.append((time.perf_counter() - started) * 1000)
    return percentiles(times)


def first_rows(catalog: Path, limit: int, out: Path) -> Path:
    """The catalogue's first `limit` rows as a CSV with absolute image paths."""
    products = read_catalog(catalog).products[:limit]
    names = sorted({name for p in products for name in p.attributes})
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "image", "text", *names])
        for p in products:
            writer.writerow([p.id, str(p.image), p.text, *(p.attributes.get(n, "") for n in names)])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--model", type=Path, help="model artifact (default: the bundled one)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, help="only the catalogue's first N products")
    parser.add_argument("--workers", type=int, help="decoding processes (default: by cores)")
    parser.add_argument("--encoder", default="torch", help="the old path's encoder (torch)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the old-path build")
    parser.add_argument("--out", type=Path, help="index directory (default: a temporary one)")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-index-"))
    catalog = args.catalog
    if args.limit:
        catalog = first_rows(args.catalog, args.limit, scratch / "catalog" / "catalog.csv")
    products = read_catalog(catalog).products
    workers = args.workers if args.workers is not None else max(1, default_workers(10**6))
    load_before = os.getloadavg()[0]
    model = load_encoder(args.model, device=args.device)
    out = args.out or scratch / "index"
    cold = build_index(catalog, model, out, batch_size=args.batch_size, workers=workers)
    old = None
    if not args.no_baseline:
        old_model = load_encoder(args.model, device=args.device, runtime=args.encoder)
        old = build_index(
            catalog, old_model, scratch / "old", batch_size=args.batch_size, workers=0
        )
        del old_model
    warm = build_index(catalog, model, out, batch_size=args.batch_size, progress=False)
    texts = [p.text for p in products[: args.queries]]
    queries = model.encode_texts(texts)
    before = rss_bytes()
    index = open_index(out, device="cpu", expected_model_id=model.model_id, scan="pca")
    loaded = rss_bytes() - before
    raw = len(index.targets) * len(index) * model.embed_dim * 4  # one set per target
    plain = open_index(out, device="cpu", scan="faiss")
    new_rate = len(products) / cold.seconds
    rows = [
        ("products", f"{len(index):,}"),
        (
            "cold build (encode + index + publish)",
            f"{cold.seconds:.1f} s, {workers} decoding workers",
        ),
        ("cold build throughput", f"{new_rate:.1f} products/s"),
    ]
    if old is not None:
        old_rate = len(products) / old.seconds
        rows += [
            (f"  old path (--encoder {args.encoder}, decoding in process)",
             f"{old.seconds:.1f} s, {old_rate:.1f} products/s"),
            ("  new / old throughput", f"{new_rate / old_rate:.2f}x"),
        ]  # fmt: skip
    rows += [
        ("rebuild, warm cache", f"{warm.seconds:.1f} s"),
        ("loaded index memory (pca scan)", f"{loaded / 1e6:.1f} MB = {loaded / raw:.2f} x raw vectors"),
    ]  # fmt: skip
    gender = products[0].attributes.get("gender")
    for name, opened in (("pca scan", index), ("FAISS", plain)):
        latency = query_latency(opened, queries, None)
        rows.append((f"text query, {name}, p50 / p90", "{:.2f} / {:.2f} ms".format(*latency)))
        if gender:
            latency = query_latency(opened, queries, {"gender": gender})
            rows.append(
                (f"text query, {name}, gender={gender}", "{:.2f} / {:.2f} ms".format(*latency))
            )
    index.close()
    plain.close()
    print(f"\n{catalog} with model {model.model_id[:12]} on {model.device}, "
          f"{type(model).__name__}; load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after, {os.cpu_count()} CPUs\n")  # fmt: skip
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
