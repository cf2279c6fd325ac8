"""The val-split tasks the search-time experiments score a photo gallery on, shared by
search_time_study.py and image_ensemble.py: the title task with the val photos as the
gallery (text queries hubness-corrected with the model's query bank), the seed
protocol both ways (a 1,000-product val gallery, seed 0) and the category tasks' P@10
(cosine). Scratch code, as the rest of this folder."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np

from models import JointModel
from models.catalog import Product
from models.hubness import hubness, sample_bank
from training.evaluate import CATEGORY_FIELDS
from training.metrics import precision_summary, ranked_relevance, summarise
from training.queries import MISSING

# (queries (Q, D), their photos (Q, D)) -> moved queries (Q, D)
QueryFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


def norm(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class ValTasks:
    """`model` encodes the texts; `val` are the gallery products, `train` give the bank."""

    def __init__(self, model: JointModel, val: list[Product], train: list[Product]) -> None:
        self.titles = [p.text for p in val]
        self.tv = model.encode_texts(self.titles)
        self.distinct = sorted(set(self.titles))
        first = {t: i for i, t in reversed(list(enumerate(self.titles)))}
        self.dv = self.tv[[first[t] for t in self.distinct]]
        self.seed_rows = random.Random(0).sample(range(len(val)), 1000)
        self.st = [self.titles[i] for i in self.seed_rows]
        self.bank = model.encode_texts(sample_bank([p.text for p in train]))
        self.cats = []
        for field in CATEGORY_FIELDS:
            keys = [p.attributes.get(field, "").strip() for p in val]
            values = sorted({k for k in keys if k.lower() not in MISSING})
            self.cats.append((model.encode_texts(values), values, keys))

    def report(
        self, name: str, gallery: np.ndarray, qfun: QueryFunction | None = None, alpha: float = 0.5
    ) -> None:
        """Print one line of scores for `gallery` (one unit row per val photo)."""
        r = hubness(gallery, self.bank, 10)
        q = self.dv if qfun is None else qfun(self.dv, gallery)
        title = summarise(
            ranked_relevance(q @ gallery.T - alpha * r, self.distinct, self.titles),
            recall="share",
        )
        rows, st = self.seed_rows, self.st
        sq = self.tv[rows] if qfun is None else qfun(self.tv[rows], gallery[rows])
        seed = summarise(ranked_relevance(sq @ gallery[rows].T - alpha * r[rows], st, st))
        iseed = summarise(ranked_relevance(gallery[rows] @ self.tv[rows].T, st, st))
        p10 = [
            precision_summary(ranked_relevance(v @ gallery.T, vals, keys))["P@10"]
            for v, vals, keys in self.cats
        ]
        print(
            f"{name:<28} title R@10 {title['R@10']:.3f} MRR {title['MRR@10']:.3f} | seed t2i "
            f"R@1 {seed['R@1']:.3f} R@10 {seed['R@10']:.3f} | i2t R@1 {iseed['R@1']:.3f} "
            f"R@10 {iseed['R@10']:.3f} | cat P@10 " + " / ".join(f"{x:.3f}" for x in p10),
            flush=True,
        )
