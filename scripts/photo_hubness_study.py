"""Hubness correction for photo queries (image -> text), on the val split.

    python scripts/photo_hubness_study.py --catalog ../shared/data/kagl/catalog.csv [--model M]

The text-query correction (models.hubness, scripts/hubness_study.py) lowers photos that
sit close to every title. Photo uploads have the mirror problem: some titles sit close
to every photo. Their bank has to be photos, and an evaluation's query photos must not
be in it, so it is a seeded sample of the training split's photos (as the artifact
would carry it: `--dtype` stores it in float16 or int8, to see what that costs).

For each bank size, k and alpha it prints:
  - seed protocol (a 1,000-product val gallery, seed 0): image->text R@1 / R@5 / R@10;
  - all val photos against all distinct val titles: R@1 / R@10 / MRR@10;
  - val photos against val product vectors (models.fusion, photo 0.9 + title 0.1; each
    photo's own product is in the gallery): R@1 of the right product.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from val_gallery import load_val_gallery

from models.fusion import fuse
from models.hubness import hubness, pack_vectors, unpack_vectors
from training.metrics import ranked_relevance, summarise


def stored(bank: np.ndarray, dtype: str) -> np.ndarray:
    """`bank` as it would come back from the artifact in `dtype` (re-normalised)."""
    if dtype == "float32":
        return bank
    if dtype == "float16":
        back = bank.astype(np.float16).astype(np.float32)
        return back / np.linalg.norm(back, axis=1, keepdims=True)
    return unpack_vectors(*pack_vectors(bank))  # int8, as the artifact stores it


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--model", type=Path, help="artifact (default: the bundled model)")
    parser.add_argument("--banks", type=int, nargs="+", default=[1000, 2000, 5000, 10000])
    parser.add_argument("--ks", type=int, nargs="+", default=[10])
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument(
        "--dtypes", nargs="+", default=["float32"], choices=["float32", "float16", "int8"]
    )
    args = parser.parse_args()

    gallery = load_val_gallery(args.catalog, args.model)
    model, splits, val = gallery.model, gallery.splits, gallery.val
    photos, titles, title_vectors = gallery.photos, gallery.titles, gallery.title_vectors
    seed_rows, seed_titles = gallery.seed_rows, gallery.seed_titles
    distinct, distinct_vectors = gallery.distinct, gallery.distinct_vectors
    products = fuse(photos, title_vectors)
    ids = [str(i) for i in range(len(val))]

    train = splits.train
    order = np.random.default_rng(0).permutation(len(train))
    largest = max(args.banks)
    bank_all = model.encode_images([train[i].image for i in order[:largest]])

    print(f"model {model.model_id}; val: {len(val):,} photos, {len(distinct):,} titles")
    print(
        f"{'bank':>6}{'dtype':>8}{'k':>4}{'alpha':>7}  {'seed i->t R@1':>13}{'R@5':>7}{'R@10':>7}"
        f"  {'all val R@1':>11}{'R@10':>7}{'MRR':>7}  {'product R@1':>11}"
    )
    for size in args.banks:
        for dtype in args.dtypes:
            bank = stored(bank_all[:size], dtype)
            for k in args.ks:
                r_titles = hubness(distinct_vectors, bank, k)
                r_seed = hubness(title_vectors[seed_rows], bank, k)
                r_products = hubness(products, bank, k)
                for alpha in args.alphas:
                    seed_scores = photos[seed_rows] @ title_vectors[seed_rows].T - alpha * r_seed
                    seed = summarise(ranked_relevance(seed_scores, seed_titles, seed_titles))
                    every = summarise(
                        ranked_relevance(
                            photos @ distinct_vectors.T - alpha * r_titles, titles, distinct
                        ),
                        recall="share",
                    )
                    product = summarise(
                        ranked_relevance(photos @ products.T - alpha * r_products, ids, ids)
                    )
                    print(
                        f"{size:>6}{dtype:>8}{k:>4}{alpha:>7.2f}  {seed['R@1']:>13.3f}{seed['R@5']:>7.3f}"
                        f"{seed['R@10']:>7.3f}  {every['R@1']:>11.3f}{every['R@10']:>7.3f}"
                        f"{every['MRR@10']:>7.3f}  {product['R@1']:>11.3f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
