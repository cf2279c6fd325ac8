"""The index scans (indexer.scan) against FAISS's exact float32 search, on a real index.

    python benchmarks/bench_scan.py --index var/kagl-index --catalog ../shared/data/kagl/catalog.csv

Opens the index with each scan: "faiss" (FAISS's exact float32 search, query by query:
the reference), "float32" (one exact matrix product per batch), "float16" (half the
bytes, a short list re-scored exactly) and "pca" (the first 128 principal components in
float32, a longer short list re-scored exactly; its first pass in OpenVINO when
installed, and again in numpy as row "pca-np"). The queries are the distinct titles of the
catalogue's test split and its category values (the category tasks' queries), encoded
once with the service's encoder, so only the scan differs. Reports, per target:
  - recall@10 against the reference (a hit counts when its exact score reaches the
    reference's 10th: tied products are equally right);
  - the title task (R@1, R@10 as the share of the title's products, MRR@10) and the
    category tasks (mean P@1, P@10, MRR@10 over masterCategory, subCategory,
    articleType, baseColour), each with its change from the reference;
  - search time for 1 and for 16 queries in one call (p50 over alternating rounds);
  - with --compare-torch, the queries encoded by PyTorch too: their cosine to the
    service encoder's, and their metrics on the exact scan (row "torch q": the change
    shown is PyTorch's queries minus the service encoder's, both scanned exactly).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from indexer import open_index
from indexer.scan import PCA_DIMS, set_blas_threads
from models.catalog import read_catalog
from models.encoders import load_encoder
from training.data import split_products
from training.evaluate import CATEGORY_FIELDS

SCANS = ("faiss", "float32", "float16", "pca")
K = 10
DEPTH = 100  # hits kept per query for the metrics


def title_metrics(rows, queries: list[str], title_of: dict[str, str], counts: Counter) -> dict:  # type: ignore[no-untyped-def, type-arg]
    r1, r10, mrr = [], [], []
    for hits, query in zip(rows, queries, strict=True):
        relevant = [title_of[h.id] == query for h in hits[:K]]
        total = counts[query]
        r1.append(relevant[0] / total)
        r10.append(sum(relevant) / total)
        first = next((i for i, r in enumerate(relevant) if r), None)
        mrr.append(0.0 if first is None else 1.0 / (first + 1))
    return {"R@1": np.mean(r1), "R@10": np.mean(r10), "MRR@10": np.mean(mrr)}


def category_metrics(rows, queries: list[tuple[str, str]], attrs: dict[str, dict]) -> dict:  # type: ignore[no-untyped-def, type-arg]
    p1, p10, mrr = [], [], []
    for hits, (field, value) in zip(rows, queries, strict=True):
        relevant = [attrs[h.id].get(field) == value for h in hits[:K]]
        p1.append(float(relevant[0]))
        p10.append(sum(relevant) / K)
        first = next((i for i, r in enumerate(relevant) if r), None)
        mrr.append(0.0 if first is None else 1.0 / (first + 1))
    return {"P@1": np.mean(p1), "P@10": np.mean(p10), "MRR@10": np.mean(mrr)}


def recall_against(reference, rows) -> float:  # type: ignore[no-untyped-def]
    found = total = 0
    for exact, hits in zip(reference, rows, strict=True):
        tenth = exact[min(K, len(exact)) - 1].score
        found += sum(h.score >= tenth - 1e-6 for h in hits[:K])
        total += min(K, len(exact))
    return found / total


def timings(indices: dict, vectors: np.ndarray, target: str, rounds: int) -> dict:  # type: ignore[type-arg]
    """p50 ms of one search call with 1 and with 16 queries, rounds alternating scans."""
    times: dict[tuple[str, int], list[float]] = {(s, q): [] for s in indices for q in (1, 16)}
    for r in range(rounds):
        for scan, index in indices.items():
            for q in (1, 16):
                batch = vectors[(r * 16) % (len(vectors) - 16) :][:q]
                started = time.perf_counter()
                index.search(batch, K, target=target)
                times[(scan, q)].append(1000 * (time.perf_counter() - started))
    return {key: statistics.median(values) for key, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--catalog", type=Path, required=True, help="the index's catalogue")
    parser.add_argument("--model", type=Path, help="model artifact (default: the bundled one)")
    parser.add_argument("--targets", nargs="+", default=["image", "product"])
    parser.add_argument("--rounds", type=int, default=40, help="timing rounds")
    parser.add_argument(
        "--compare-torch",
        action="store_true",
        help="also encode the queries with PyTorch: cosine to the service's encoder, and "
        "the metrics of PyTorch's queries (FAISS exact scan)",
    )
    args = parser.parse_args(argv)

    products = read_catalog(args.catalog).products
    test = split_products(products).get("test")
    titles = sorted({p.text for p in test})
    categories = sorted(
        {(f, p.attributes[f]) for p in test for f in CATEGORY_FIELDS if p.attributes.get(f)}
    )
    torch.set_num_threads(1)  # as the service scans (one thread, as FAISS searches here):
    set_blas_threads(1)  # PyTorch for float16, numpy's BLAS for float32 and pca
    encoder = load_encoder(args.model, device="cpu")
    print(
        f"encoding {len(titles)} titles and {len(categories)} category values ...", file=sys.stderr
    )
    title_vectors = encoder.encode_texts(titles)
    category_vectors = encoder.encode_texts([value for _, value in categories])
    title_of = {p.id: p.text for p in products}
    attrs = {p.id: dict(p.attributes) for p in products}
    counts = Counter(p.text for p in products)
    indices = {s: open_index(args.index, device="cpu", scan=s, threads=1) for s in SCANS}
    with mock.patch("indexer.scan.openvino_available", return_value=False):
        # the pca scan as it runs without OpenVINO: its first pass in numpy's BLAS
        indices["pca-np"] = open_index(args.index, device="cpu", scan="pca", threads=1)
    torch_rows = {}
    if args.compare_torch:
        reference = load_encoder(args.model, device="cpu", runtime="torch")
        torch_titles = reference.encode_texts(titles)
        torch_categories = reference.encode_texts([value for _, value in categories])
        cosine = np.concatenate(
            [
                np.sum(torch_titles * title_vectors, 1),
                np.sum(torch_categories * category_vectors, 1),
            ]
        )
        print(f"{type(encoder).__name__} vs PyTorch query embeddings: cosine min "
              f"{cosine.min():.4f}, mean {cosine.mean():.5f} over {len(cosine)} queries")  # fmt: skip
        for target in args.targets:
            torch_rows[target] = (
                indices["faiss"].search(torch_titles, DEPTH, target=target),
                indices["faiss"].search(torch_categories, DEPTH, target=target),
            )
    load = os.getloadavg()[0]
    for target in args.targets:
        results = {}
        for scan, index in indices.items():
            started = time.perf_counter()
            title_rows = index.search(title_vectors, DEPTH, target=target)
            category_rows = index.search(category_vectors, DEPTH, target=target)
            results[scan] = (title_rows, category_rows, time.perf_counter() - started)
        speed = timings(indices, title_vectors, target, args.rounds)
        reference = results["faiss"]
        base_t = title_metrics(reference[0], titles, title_of, counts)
        base_c = category_metrics(reference[1], categories, attrs)
        print(f"\ntarget {target}: {len(indices['faiss']):,} products, "
              f"{len(titles)} title and {len(categories)} category queries")  # fmt: skip
        print(f"{'scan':<8} {'R@10 vs exact':>13} {'title R@1':>16} {'title R@10':>16} "
              f"{'title MRR@10':>16} {'cat P@1':>16} {'cat P@10':>16} {'cat MRR@10':>16} "
              f"{'1 q ms':>7} {'16 q ms':>8}")  # fmt: skip
        for scan, (title_rows, category_rows, _) in results.items():
            recall = recall_against(reference[0] + reference[1], title_rows + category_rows)
            t = title_metrics(title_rows, titles, title_of, counts)
            c = category_metrics(category_rows, categories, attrs)
            cells = [f"{t[m]:.4f} ({t[m] - base_t[m]:+.4f})" for m in ("R@1", "R@10", "MRR@10")]
            cells += [f"{c[m]:.4f} ({c[m] - base_c[m]:+.4f})" for m in ("P@1", "P@10", "MRR@10")]
            print(f"{scan:<8} {recall:>13.4f} " + " ".join(f"{x:>16}" for x in cells)
                  + f" {speed[(scan, 1)]:>7.2f} {speed[(scan, 16)]:>8.2f}")  # fmt: skip
        if target in torch_rows:
            t = title_metrics(torch_rows[target][0], titles, title_of, counts)
            c = category_metrics(torch_rows[target][1], categories, attrs)
            cells = [f"{t[m]:.4f} ({t[m] - base_t[m]:+.4f})" for m in ("R@1", "R@10", "MRR@10")]
            cells += [f"{c[m]:.4f} ({c[m] - base_c[m]:+.4f})" for m in ("P@1", "P@10", "MRR@10")]
            print(f"{'torch q':<8} {'(faiss)':>13} " + " ".join(f"{x:>16}" for x in cells))
    extra = len(indices["float16"]) * encoder.embed_dim * 2 * len(indices["float16"].targets)
    reduced = (  # float32 coordinates (indexer.scan)
        len(indices["pca"]) * min(PCA_DIMS, encoder.embed_dim) * 4 * len(indices["pca"].targets)
    )
    print(f"\nthe float16 copies add {extra / 1e6:.0f} MB, the pca copies {reduced / 1e6:.0f} MB; "
          f"load average (1 min) {load:.2f} "
          f"at the start, {os.getloadavg()[0]:.2f} at the end, {os.cpu_count()} CPUs")  # fmt: skip
    for index in indices.values():
        index.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
