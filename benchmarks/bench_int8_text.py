"""Static int8 text towers (NNCF post-training quantisation, run by OpenVINO) against the
bfloat16 one the service runs.

    pip install nncf   # not a dependency of the project: only this study needs it
    python benchmarks/bench_int8_text.py [--model M] --catalog ../shared/data/kagl/catalog.csv

ONNX Runtime's dynamic int8 text tower (`export-onnx --int8`) fails the 0.995 cosine bar
on KAGL's texts. This asks whether a calibrated (static) int8 graph does, and what it
saves: the exported float32 text graph is quantised by NNCF with its transformer preset
(SmoothQuant, per-channel weights), calibrated on 300 catalogue texts and 60 attribute
values, in several variants that keep some MatMuls in float (a tower's usual outlier
spots: each layer's feed-forward output projection, the projection head, and one whole
layer at a time). Each variant is checked like `export-onnx --int8` checks: the lowest
cosine to ONNX Runtime's float32 embeddings over the built-in probe texts and 5,000 of
the catalogue's titles and attribute values (none of them calibration texts), and timed
like the service calls it (OpenVINO, lengths padded as `TEXT_PADDING` pads them, the
service's threads) on batches of 1, 8 and 16 distinct titles, variants alternating.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from models.catalog import read_catalog
from models.encoders import load_encoder
from models.onnx_encoder import OnnxEncoder, cpu_session
from models.onnx_export import INT8_MIN_COSINE, PROBE_TEXTS, TEXT_GRAPH
from models.openvino_runtime import TEXT_PADDING, OpenVinoGraph

BATCHES = (1, 8, 16)
LAYERS = 6  # MiniLM-L6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, help="model artifact (default: the bundled one)")
    parser.add_argument("--catalog", type=Path, required=True, help="probe and calibration texts")
    parser.add_argument("--calls", type=int, default=60, help="timed calls per variant and size")
    parser.add_argument("--threads", type=int, default=0, help="OpenVINO threads (0: all cores)")
    args = parser.parse_args(argv)
    try:
        import nncf
        import onnx
        import openvino as ov
    except ImportError as exc:
        print(
            f"this study needs nncf, onnx and openvino ({exc}): pip install nncf", file=sys.stderr
        )
        return 1
    nncf.set_log_level(logging.ERROR)

    encoder = load_encoder(args.model, runtime="openvino", threads=args.threads)
    if not isinstance(encoder, OnnxEncoder):
        print("no exported graphs for this model here", file=sys.stderr)
        return 1
    float_graph = encoder.directory / TEXT_GRAPH
    products = read_catalog(args.catalog).products
    values = sorted({v for p in products for v in p.attributes.values()})
    texts = sorted({p.text for p in products} | set(values))
    random.Random(0).shuffle(texts)
    probes = list(PROBE_TEXTS) + texts[:5000]
    calibration = texts[5000:5300] + random.Random(1).sample(values, min(60, len(values)))
    titles = sorted({p.text for p in products})
    random.Random(2).shuffle(titles)

    def feeds(batch: list[str]) -> dict[str, np.ndarray]:
        return {k: np.ascontiguousarray(v) for k, v in encoder.tokenizer(batch).items()}

    def embed(graph: object, batch_texts: list[str]) -> np.ndarray:
        chunks = [graph.run(None, feeds(batch_texts[i : i + 16]))[0]  # type: ignore[attr-defined]
                  for i in range(0, len(batch_texts), 16)]  # fmt: skip
        vectors = np.concatenate(chunks)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    reference = embed(cpu_session(float_graph, threads=0), probes)
    matmuls = [n.name for n in onnx.load(str(float_graph)).graph.node if n.op_type == "MatMul"]
    feed_forward_out = [n for n in matmuls if n.endswith("output/dense/MatMul")
                        and "attention" not in n]  # fmt: skip
    head = [n for n in matmuls if n.startswith("/text_head/")]
    float_parts: dict[str, list[str] | None] = {
        "bfloat16 (ships)": None,
        "int8, all MatMuls": [],
        "int8, FFN out + head float": feed_forward_out + head,
    }
    for layer in range(LAYERS):
        in_layer = [n for n in matmuls if f"layer.{layer}/" in n]
        float_parts[f"  + layer {layer} float"] = feed_forward_out + head + in_layer
    dataset = nncf.Dataset([feeds(calibration[i : i + 8]) for i in range(0, len(calibration), 8)])
    core = ov.Core()
    scratch = Path(tempfile.mkdtemp(prefix="bench-int8-"))
    graphs: dict[str, OpenVinoGraph] = {}
    cosines: dict[str, np.ndarray] = {}
    for name, keep_float in float_parts.items():
        print(f"{name} ...", file=sys.stderr)
        source = float_graph
        if keep_float is not None:
            with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars
                quantised = nncf.quantize(
                    onnx.load(str(float_graph)),
                    dataset,
                    subset_size=len(calibration),
                    model_type=nncf.ModelType.TRANSFORMER,
                    ignored_scope=nncf.IgnoredScope(names=keep_float) if keep_float else None,
                )
            source = scratch / f"variant-{len(graphs)}.onnx"
            onnx.save(quantised, str(source))
        graphs[name] = OpenVinoGraph(
            core, source, threads=args.threads, precision="bfloat16", pad=TEXT_PADDING
        )
        cosines[name] = np.sum(embed(graphs[name], probes) * reference, axis=1)

    shutil.rmtree(scratch)  # compiled: the files are no longer read
    times: dict[tuple[str, int], list[float]] = {(n, b): [] for n in graphs for b in BATCHES}
    for size in BATCHES:
        batches = [titles[i * size : (i + 1) * size] for i in range(args.calls)]
        warm = [feeds(titles[-(i + 1) * size :][:size]) for i in range(20)]
        for graph in graphs.values():
            for feed in warm:
                graph.run(None, feed)
        for start in range(0, len(batches), 10):  # rounds of 10 calls: drift hits all
            for name, graph in graphs.items():
                for batch in batches[start : start + 10]:
                    feed = feeds(batch)
                    began = time.perf_counter()
                    graph.run(None, feed)
                    times[(name, size)].append(time.perf_counter() - began)

    print(f"model {encoder.model_id}; {len(probes)} probe texts, {len(calibration)} calibration "
          f"texts; load average (1 min) {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'variant':<28} {'min cosine':>10} {'< ' + str(INT8_MIN_COSINE):>8} "
          + " ".join(f"{f'{b} ms':>8}" for b in BATCHES) + "  lowest probe")  # fmt: skip
    for name, cosine in cosines.items():
        cells = " ".join(f"{statistics.median(times[(name, b)]) * 1000:>8.2f}" for b in BATCHES)
        worst = probes[int(np.argmin(cosine))]
        print(f"{name:<28} {cosine.min():>10.5f} {int(np.sum(cosine < INT8_MIN_COSINE)):>8} "
              f"{cells}  {worst!r}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
