"""Which product attributes a model's image and text embeddings encode, side by side.

    python scripts/diagnose_model.py --model models/default --catalog ../shared/data/kagl/catalog.csv

Encodes a seeded sample of the train split and the whole val split, fits one linear
probe per attribute (gender, articleType, baseColour and the title's first word as the
brand) on the train embeddings and scores it on val; then, with each distinct val
title as a query against the photos of both sets, the share of the top 10 that agree
with the query on each attribute. A side that probes far worse than the other is the
one holding retrieval back.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np

from models import load_model, read_catalog
from training.data import SplitSpec
from training.diagnose import (
    BRAND,
    attribute_probe,
    attribute_value,
    majority_accuracy,
    median_pool_size,
    retrieved_agreement,
)

ATTRIBUTES = ("gender", "articleType", "baseColour", BRAND)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, help="artifact directory (default: the bundled model)"
    )
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument(
        "--train-sample", type=int, default=8000, help="train products to fit the probes on"
    )
    parser.add_argument("--attributes", default=",".join(ATTRIBUTES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    model = load_model(args.model, device="auto")
    catalogue = read_catalog(args.catalog).products
    splits = SplitSpec.from_metrics(model.metrics).split(catalogue)
    train = random.Random(args.seed).sample(splits.train, min(args.train_sample, len(splits.train)))
    val = splits.val
    if not train or not val:
        raise SystemExit("the catalogue needs products in both the train and the val split")
    print(f"encoding {len(train)} train and {len(val)} val products with {model.model_id}")
    images = {
        name: model.encode_images([p.image for p in part])
        for name, part in (("train", train), ("val", val))
    }
    texts = {
        name: model.encode_texts([p.text for p in part])
        for name, part in (("train", train), ("val", val))
    }

    queries = list({p.text: p for p in val}.values())  # one product per distinct val title
    gallery = train + val
    gallery_images = np.concatenate([images["train"], images["val"]])
    scores = model.encode_texts([p.text for p in queries]) @ gallery_images.T

    print(
        f"\n{'attribute':<12} {'values':>6} {'majority':>8} {'image':>6} {'text':>6} {'top-10 agree':>12}"
    )
    for name in args.attributes.split(","):
        train_y = [attribute_value(p, name) for p in train]
        val_y = [attribute_value(p, name) for p in val]
        image_acc = attribute_probe(images["train"], train_y, images["val"], val_y, seed=args.seed)
        text_acc = attribute_probe(texts["train"], train_y, texts["val"], val_y, seed=args.seed)
        agree = retrieved_agreement(
            scores,
            [attribute_value(p, name) for p in queries],
            [attribute_value(p, name) for p in gallery],
        )
        print(
            f"{name:<12} {len(set(train_y)):>6} {majority_accuracy(train_y, val_y):>8.3f} "
            f"{image_acc:>6.3f} {text_acc:>6.3f} {agree:>12.3f}"
        )
    names = args.attributes.split(",")
    print("\nmedian number of catalogue products sharing a val title's")
    for depth in range(1, len(names) + 1):
        print(
            f"  {' + '.join(names[:depth])}: {median_pool_size(queries, catalogue, names[:depth]):.0f}"
        )


if __name__ == "__main__":
    main()
