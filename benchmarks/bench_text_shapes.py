"""The OpenVINO text tower with and without shape buckets (models.openvino_runtime).

    python benchmarks/bench_text_shapes.py [--model M] --catalog ../shared/data/kagl/catalog.csv

A service encodes batches of whatever size and token length its queries come in; a
dynamic-shape OpenVINO graph plans each new input shape. With buckets the inputs are
padded to a few shapes (lengths to a multiple of 8, batches to a power of two), so the
plans are reused at the cost of some padded tokens. For each batch size, both modes
first encode the same 300 warm-up batches (every bucket has been seen), then alternate
rounds over the same distinct titles; the table gives the median time per call and the
lowest cosine between the two modes' embeddings of the same titles.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from models.catalog import read_catalog
from models.encoders import load_encoder
from models.onnx_encoder import OnnxEncoder
from models.openvino_runtime import OpenVinoGraph

BATCHES = (1, 3, 7, 8, 16, 32)


def timed_calls(encoder: OnnxEncoder, batches: list[list[str]]) -> list[float]:
    """Seconds per encode_texts call, one per batch."""
    seconds = []
    for batch in batches:
        started = time.perf_counter()
        encoder.encode_texts(batch)
        seconds.append(time.perf_counter() - started)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, help="model artifact (default: the bundled one)")
    parser.add_argument("--catalog", type=Path, required=True, help="titles to encode")
    parser.add_argument("--calls", type=int, default=100, help="timed calls per mode and size")
    parser.add_argument("--threads", type=int, default=0, help="OpenVINO threads (0: all cores)")
    args = parser.parse_args(argv)

    encoder = load_encoder(args.model, runtime="openvino", threads=args.threads)
    graph = getattr(encoder, "_text", None)
    if not isinstance(graph, OpenVinoGraph):
        print("this model's text tower does not run in OpenVINO here", file=sys.stderr)
        return 1
    titles = sorted({p.text for p in read_catalog(args.catalog).products})
    random.Random(0).shuffle(titles)

    print(f"model {encoder.model_id}, text tower {encoder.text_precision}; "
          f"load average (1 min) {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'batch':>5} {'no buckets ms':>14} {'buckets ms':>11} {'ratio':>6} {'min cosine':>11}")
    stream = itertools.cycle(titles)  # distinct titles, repeated only past the catalogue's
    for size in BATCHES:
        warm = [list(itertools.islice(stream, size)) for _ in range(300)]
        timed = [list(itertools.islice(stream, size)) for _ in range(args.calls)]
        times: dict[bool, list[float]] = {False: [], True: []}
        for buckets in (False, True):
            graph.buckets = buckets
            timed_calls(encoder, warm)
        for start in range(0, len(timed), 10):  # alternating rounds: drift hits both
            for buckets in (False, True):
                graph.buckets = buckets
                times[buckets] += timed_calls(encoder, timed[start : start + 10])
        graph.buckets = False
        plain = encoder.encode_texts(timed[0])
        graph.buckets = True
        bucketed = encoder.encode_texts(timed[0])
        cosine = float(np.min(np.sum(plain * bucketed, axis=1)))
        off, on = (statistics.median(times[b]) * 1000 for b in (False, True))
        print(f"{size:>5} {off:>14.2f} {on:>11.2f} {off / on:>5.2f}x {cosine:>11.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
