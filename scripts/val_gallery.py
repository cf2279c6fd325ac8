"""The val split as the hubness studies score it (scripts/hubness_study.py,
scripts/photo_hubness_study.py): every val photo and title encoded once, the seed
protocol's 1,000-product gallery (seed 0), and the distinct titles."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.catalog import Product, read_catalog
from models.encoders import Encoder, load_encoder
from training.data import Splits, SplitSpec


@dataclass(frozen=True)
class ValGallery:
    model: Encoder
    splits: Splits
    photos: np.ndarray  # (N, D): every val photo
    titles: list[str]  # each val product's title
    title_vectors: np.ndarray  # (N, D)
    seed_rows: list[int]  # the seed protocol's gallery: rows of the above
    distinct: list[str]  # the distinct val titles, sorted
    distinct_vectors: np.ndarray  # (T, D), in that order

    @property
    def val(self) -> list[Product]:
        return self.splits.val

    @property
    def seed_titles(self) -> list[str]:
        return [self.titles[i] for i in self.seed_rows]


def load_val_gallery(catalog: Path, model_dir: Path | None) -> ValGallery:
    """Encode the val split of `catalog` with the model at `model_dir` (None: bundled)."""
    model = load_encoder(model_dir, "cpu")
    splits = SplitSpec.from_metrics(model.metrics).split(read_catalog(catalog).products)
    val = splits.val
    photos = model.encode_images([p.image for p in val])
    titles = [p.text for p in val]
    title_vectors = model.encode_texts(titles)
    seed_rows = random.Random(0).sample(range(len(val)), min(1000, len(val)))
    distinct = sorted(set(titles))
    first = {t: i for i, t in reversed(list(enumerate(titles)))}
    distinct_vectors = title_vectors[[first[t] for t in distinct]]
    return ValGallery(
        model, splits, photos, titles, title_vectors, seed_rows, distinct, distinct_vectors
    )
