"""The OpenVINO text tower with its inputs padded to fewer shapes, or not
(models.openvino_runtime: TEXT_PADDING, the service's and the index build's).

    python benchmarks/bench_text_shapes.py [--model M] --catalog ../shared/data/kagl/catalog.csv

A service encodes batches of whatever size and token length its queries come in, and a
dynamic-shape OpenVINO graph plans each input shape it meets. Padding makes the shapes
fewer at the cost of padded tokens. Three ways are compared: none; lengths rounded up
to a multiple of 8 (`pad_length`); and that for batches of up to 16 texts only
(`pad_small_batches`, what ships). For each batch size of distinct titles in random order (a service's
batches), all three first encode the same 300 warm-up batches, then alternate rounds
over the same titles; the table gives the median milliseconds per call and the lowest
cosine between a padded and the unpadded embedding of the same title. The last row is
an index build's way: 8,192 titles in length-sorted batches of 32, milliseconds per
title.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from models.catalog import read_catalog
from models.encoders import load_encoder
from models.onnx_encoder import OnnxEncoder
from models.openvino_runtime import OpenVinoGraph, Padding, pad_length, pad_small_batches

BATCHES = (1, 3, 7, 12, 16, 32)
PADDINGS: dict[str, Padding | None] = {
    "none": None,
    "length": pad_length,
    "small batches": pad_small_batches,
}


def alternate(
    graph: OpenVinoGraph, run: Callable[[list[str]], float], batches: list[list[str]]
) -> dict[str, list[float]]:
    """Seconds of each call per padding, in rounds of 10 batches (drift hits all)."""
    seconds: dict[str, list[float]] = {name: [] for name in PADDINGS}
    for start in range(0, len(batches), 10):
        for name, pad in PADDINGS.items():
            graph.pad = pad
            seconds[name] += [run(batch) for batch in batches[start : start + 10]]
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, help="model artifact (default: the bundled one)")
    parser.add_argument("--catalog", type=Path, required=True, help="titles to encode")
    parser.add_argument("--calls", type=int, default=100, help="timed calls per padding and size")
    parser.add_argument("--threads", type=int, default=0, help="OpenVINO threads (0: all cores)")
    args = parser.parse_args(argv)

    encoder = load_encoder(args.model, runtime="openvino", threads=args.threads)
    graph = getattr(encoder, "_text", None)  # the text graph, to switch its padding
    if not isinstance(encoder, OnnxEncoder) or not isinstance(graph, OpenVinoGraph):
        print("this model's text tower does not run in OpenVINO here", file=sys.stderr)
        return 1
    shipped = graph.pad
    titles = sorted({p.text for p in read_catalog(args.catalog).products})
    random.Random(0).shuffle(titles)
    stream = itertools.cycle(titles)  # distinct titles, repeated only past the catalogue's

    def timed(batch: list[str], batch_size: int = 256) -> float:
        started = time.perf_counter()
        encoder.encode_texts(batch, batch_size=batch_size)
        return time.perf_counter() - started

    print(f"model {encoder.model_id}, text tower {encoder.text_precision}; "
          f"load average (1 min) {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'batch':>12} " + " ".join(f"{name + ' ms':>15}" for name in PADDINGS)
          + f" {'min cosine':>11}")  # fmt: skip
    for size in BATCHES:
        warm = [list(itertools.islice(stream, size)) for _ in range(300)]
        batches = [list(itertools.islice(stream, size)) for _ in range(args.calls)]
        alternate(graph, timed, warm)
        seconds = alternate(graph, timed, batches)
        graph.pad = None
        plain = encoder.encode_texts(batches[0])
        cosine = 1.0
        for pad in (pad_length, pad_small_batches):
            graph.pad = pad
            cosine = min(cosine, float(np.min(np.sum(plain * encoder.encode_texts(batches[0]), 1))))
        cells = " ".join(f"{statistics.median(s) * 1000:>15.2f}" for s in seconds.values())
        print(f"{size:>12} {cells} {cosine:>11.5f}")

    build: dict[str, float] = dict.fromkeys(PADDINGS, 0.0)
    for number in range(9):  # the first 1,024 titles warm up
        chunk = list(itertools.islice(stream, 1024))
        for name, pad in PADDINGS.items():
            graph.pad = pad
            build[name] += timed(chunk, batch_size=32) if number else 0.0
    cells = " ".join(f"{seconds / 8192 * 1000:>15.3f}" for seconds in build.values())
    print(f"{'build, 32s':>12} {cells}")
    graph.pad = shipped
    print(f"shipped: {next(n for n, p in PADDINGS.items() if p is shipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
