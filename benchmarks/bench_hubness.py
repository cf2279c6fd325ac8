"""The service's hubness correction on a real index: what it costs and how close its
re-ranked short list comes to ranking the whole catalogue by the corrected score.

    python benchmarks/bench_hubness.py --index var/kagl-index --catalog ../shared/data/kagl/catalog.csv

Opens the index as the service does (the pca scan, one thread), encodes the model's
query bank and measures every product's hubness (ProductIndex.set_hubness, timed: the
service pays it at start and at each reload). The queries are the distinct titles of
the catalogue's test split (all of three words or more, so all corrected), encoded once
with the service's encoder. When the model has a photo bank, the test products' photos
query the titles as well (target text, corrected against the photo bank). Prints, per
target (photos, product vectors; titles for photo queries):
  - the title task (R@1, R@10 as the share of the title's products, MRR@10) with plain
    cosine and with the correction; for photo queries R@1 / R@10 / MRR@10 of the first
    hit with the photo's own title;
  - recall@10 of the corrected search (k + HUBNESS_CANDIDATES candidates re-ranked;
    --candidates tries other counts) against the exact corrected ranking of every
    product (a hit counts when its exact corrected score reaches the exact 10th's);
  - search time of 1 and 16 queries in one call, plain and corrected (p50 over
    `--rounds` calls each).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Literal

import numpy as np

import indexer.search
from indexer import CORRECTED_TARGETS, open_index
from indexer.scan import set_blas_threads
from models.catalog import read_catalog
from models.encoders import load_encoder
from models.hubness import DEFAULT_ALPHA, hubness, photo_bank_of
from training.data import SplitSpec

K = 10


def title_metrics(rows, queries: list[str], title_of: dict[str, str], counts: Counter) -> dict:  # type: ignore[no-untyped-def, type-arg]
    r1, r10, mrr = [], [], []
    for hits, query in zip(rows, queries, strict=True):
        relevant = [title_of[h.id] == query for h in hits[:K]]
        r1.append(relevant[0] / counts[query])
        r10.append(sum(relevant) / counts[query])
        first = next((i for i, r in enumerate(relevant) if r), None)
        mrr.append(0.0 if first is None else 1.0 / (first + 1))
    return {"R@1": np.mean(r1), "R@10": np.mean(r10), "MRR@10": np.mean(mrr)}


def photo_metrics(rows, own_titles: list[str], title_of: dict[str, str]) -> dict:  # type: ignore[no-untyped-def, type-arg]
    r1, r10, mrr = [], [], []
    for hits, own in zip(rows, own_titles, strict=True):
        first = next((i for i, h in enumerate(hits[:K]) if title_of[h.id] == own), None)
        r1.append(first == 0)
        r10.append(first is not None)
        mrr.append(0.0 if first is None else 1.0 / (first + 1))
    return {"R@1": np.mean(r1), "R@10": np.mean(r10), "MRR@10": np.mean(mrr)}


def p50_ms(search, batches: list[np.ndarray]) -> float:  # type: ignore[no-untyped-def]
    times = []
    for batch in batches:
        started = time.perf_counter()
        search(batch)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--model", type=Path, help="artifact (default: the bundled model)")
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA)
    parser.add_argument("--rounds", type=int, default=200, help="timed calls per setting")
    parser.add_argument(
        "--candidates",
        type=int,
        nargs="+",
        default=[indexer.search.HUBNESS_CANDIDATES],
        help="candidates beyond k re-ranked by a corrected search",
    )
    args = parser.parse_args()

    set_blas_threads(1)
    model = load_encoder(args.model, "cpu", threads=1)
    if not model.query_bank:
        raise SystemExit(f"model {model.model_id} has no query bank (query_bank.txt)")
    products = read_catalog(args.catalog).products
    test = SplitSpec.from_metrics(model.metrics).split(products).test
    queries = sorted({p.text for p in test})
    vectors = model.encode_texts(queries)
    bank = model.encode_texts(model.query_bank)
    photo_bank = photo_bank_of(model)
    photos = model.encode_images([p.image for p in test]) if photo_bank is not None else None
    index = open_index(args.index, device="cpu", scan="pca", expected_model_id=model.model_id)
    started = time.perf_counter()
    index.set_hubness(bank, photo_bank=photo_bank, alpha=args.alpha)
    setup_s = time.perf_counter() - started
    title_of = {p.id: p.text for p in products}
    counts = Counter(title_of[i] for i in index._ids)
    rng = np.random.default_rng(0)
    query_sets: dict[Literal["text", "image"], tuple[np.ndarray, np.ndarray]] = {
        "text": (vectors, bank)
    }
    if photos is not None and photo_bank is not None:
        query_sets["image"] = (photos, photo_bank)

    with_photos = ""
    if photos is not None and photo_bank is not None:
        with_photos = f"; {len(photos):,} test photos, photo bank of {len(photo_bank):,}"
    print(
        f"{args.index}: {len(index):,} products, model {model.model_id}, "
        f"{len(queries):,} test titles, bank of {len(bank):,}{with_photos}; alpha {args.alpha}"
    )
    print(f"set_hubness ({', '.join(index.hubness_targets)} targets): {setup_s:.1f} s")
    header = f"{'query->target':<14}{'ranking':<16}{'R@1':>8}{'R@10':>8}{'MRR@10':>8}{'recall@10 vs exact':>20}{'1 query ms':>12}{'16 queries ms':>15}"
    print(header)
    print("-" * len(header))
    pairs = [(kind, target) for kind in query_sets for target in CORRECTED_TARGETS[kind]]
    for kind, target in pairs:
        if target not in index.hubness_targets:
            continue
        vectors, bank = query_sets[kind]
        singles = [vectors[[i]] for i in rng.integers(0, len(vectors), args.rounds)]
        sixteens = [vectors[rng.integers(0, len(vectors), 16)] for _ in range(args.rounds)]
        stored = index._sides[target].vectors_of(index._nums)
        exact_scores = vectors @ stored.T - args.alpha * hubness(stored, bank)[None, :]
        exact_top = np.argsort(-exact_scores, axis=1, kind="stable")[:, :K]
        for candidates in [None, *args.candidates]:
            corrected = candidates is not None
            if corrected:
                indexer.search.HUBNESS_CANDIDATES = candidates
            rows = index.search(vectors, K, target=target, corrected=corrected)
            if kind == "text":
                metrics = title_metrics(rows, queries, title_of, counts)
            else:
                metrics = photo_metrics(rows, [p.text for p in test], title_of)
            agreement = "-"
            if corrected:
                position = {identifier: i for i, identifier in enumerate(index._ids)}
                hits = []
                for row, (top, scores) in enumerate(zip(exact_top, exact_scores, strict=True)):
                    tenth = scores[top[-1]]  # a tie with the exact 10th is as right
                    got = [position[h.id] for h in rows[row]]
                    hits.append(np.mean([scores[g] >= tenth - 1e-6 for g in got]))
                agreement = f"{np.mean(hits):.4f}"

            def search(
                batch: np.ndarray, target: str = target, corrected: bool = corrected
            ) -> object:
                return index.search(batch, K, target=target, corrected=corrected)  # type: ignore[arg-type]

            one = p50_ms(search, singles)
            sixteen = p50_ms(search, sixteens)
            print(
                f"{kind + '->' + target:<14}{f'corrected, +{candidates}' if corrected else 'cosine':<16}"
                f"{metrics['R@1']:>8.4f}"
                f"{metrics['R@10']:>8.4f}{metrics['MRR@10']:>8.4f}{agreement:>20}"
                f"{one:>12.2f}{sixteen:>15.2f}"
            )
    index.close()


if __name__ == "__main__":
    main()
