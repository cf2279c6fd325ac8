"""What a model costs per photo and per query, beside another: encoders as the service
and the indexer run them.

    python benchmarks/bench_models.py models/default var/default-flip --catalog ../shared/data/kagl/catalog.csv

Loads each artifact with `models.encoders.load_encoder` (OpenVINO or ONNX Runtime when
installed, else PyTorch; --threads as the service's encoder threads) and measures, in
alternating rounds so that every model sees the same machine:
  - photo query: one 60x80 JPEG upload decoded, preprocessed and encoded (the service's
    image->text path before the search), p50 / p99 in ms;
  - text query: one title encoded, p50 / p99 in ms;
  - photos/s encoding the catalogue's photos in batches of --batch-size (what bounds an
    index build's image side).
The first model is the baseline of the ratio column.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from models.catalog import read_catalog
from models.encoders import Encoder, load_encoder
from models.images import open_image


def timed_ms(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def one_round(
    encoder: Encoder,
    uploads: list[bytes],
    titles: list[str],
    photos: list[Path],
    batch_size: int,
) -> tuple[list[float], list[float], float]:
    """Per-upload ms, per-title ms, and photos/s in batches, for one encoder."""
    prepare = encoder.preprocess  # type: ignore[attr-defined]
    photo = [timed_ms(lambda d=d: encoder.encode_images([prepare(open_image(d))])) for d in uploads]
    text = [timed_ms(lambda t=t: encoder.encode_texts([t])) for t in titles]
    seconds = timed_ms(lambda: encoder.encode_images(photos, batch_size)) / 1000
    return photo, text, len(photos) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", type=Path, nargs="+", help="artifact directories")
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1, help="encoder threads (1)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--queries", type=int, default=60, help="queries per round and kind")
    parser.add_argument("--photos", type=int, default=512, help="photos per round (throughput)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    products = read_catalog(args.catalog).products
    rng = random.Random(0)
    picked = rng.sample(products, max(args.queries, args.photos))
    uploads = []
    for product in picked[: args.queries]:
        buffer = io.BytesIO()
        Image.open(product.image).convert("RGB").resize((60, 80)).save(buffer, "JPEG")
        uploads.append(buffer.getvalue())
    titles = [p.text for p in picked[: args.queries]]
    photos = [p.image for p in picked[: args.photos]]

    encoders: list[Encoder] = [load_encoder(m, "cpu", threads=args.threads) for m in args.models]
    photo_ms: list[list[float]] = [[] for _ in encoders]
    text_ms: list[list[float]] = [[] for _ in encoders]
    rates: list[list[float]] = [[] for _ in encoders]
    for encoder in encoders:  # warm-up: first calls compile and allocate
        encoder.encode_images([encoder.preprocess(open_image(uploads[0]))])  # type: ignore[attr-defined]
        encoder.encode_texts(titles[:1])
    for _ in range(args.rounds):
        for i, encoder in enumerate(encoders):
            photo, text, rate = one_round(encoder, uploads, titles, photos, args.batch_size)
            photo_ms[i] += photo
            text_ms[i] += text
            rates[i].append(rate)

    print(f"{len(products):,} products in {args.catalog}; encoder threads {args.threads}")
    header = (
        f"{'model':<34}{'id':<24}{'photo p50 ms':>13}{'p99':>7}{'text p50 ms':>12}{'p99':>7}"
        f"{'photos/s':>10}{'photo p50 x':>12}{'photos/s x':>11}"
    )
    print(header)
    print("-" * len(header))
    base_photo = statistics.median(photo_ms[0])
    base_rate = statistics.median(rates[0])
    for i, (path, encoder) in enumerate(zip(args.models, encoders, strict=True)):
        p50 = statistics.median(photo_ms[i])
        rate = statistics.median(rates[i])
        print(
            f"{path!s:<34}{encoder.model_id:<24}{p50:>13.2f}{percentile(photo_ms[i], 99):>7.2f}"
            f"{statistics.median(text_ms[i]):>12.2f}{percentile(text_ms[i], 99):>7.2f}"
            f"{rate:>10.1f}{p50 / base_photo:>12.2f}{rate / base_rate:>11.2f}"
        )


if __name__ == "__main__":
    main()
