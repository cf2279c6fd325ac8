"""Spending more computation at search time, on the val split: mirror averaging of the
photos, pseudo-relevance feedback, and database-side augmentation.

    python scripts/experiments/search_time_study.py MODEL_DIR

MODEL_DIR: a model without image_flip_average, such as the session-8 default
(`git archive 971a157 models/default | tar -x -C /tmp/s8`). With the val
photos as the gallery, each line prints the title task (recall@10, MRR@10, text
queries hubness-corrected with the model's query bank, alpha 0.5), the seed protocol
both ways (a 1,000-product val gallery) and the category tasks' P@10 (cosine), for:
  - plain: the photos as the model encodes them;
  - flip TTA: each photo's embedding averaged with its mirror image's (what
    ModelConfig.image_flip_average now does inside the model);
  - PRF b m: each text query moved towards the mean of its m best photos, weight b;
  - DBA m w: each photo mixed with its m nearest photos, weight w.
docs/training-log.md ("Photo and mirror image averaged") has the results.
"""

from __future__ import annotations

import random
import sys

import numpy as np

from models.catalog import read_catalog
from models.encoders import load_encoder
from models.hubness import hubness, sample_bank
from training.data import SplitSpec
from training.evaluate import CATEGORY_FIELDS
from training.metrics import precision_summary, ranked_relevance, summarise
from training.queries import MISSING

model = load_encoder(sys.argv[1], "cpu")
splits = SplitSpec.from_metrics(model.metrics).split(
    read_catalog("../shared/data/kagl/catalog.csv").products
)
val = splits.val
pix = [model.preprocess(p.image) for p in val]
photos = model.encode_images(pix)
flipped = model.encode_images([np.ascontiguousarray(a[:, :, ::-1]) for a in pix])
titles = [p.text for p in val]
tv = model.encode_texts(titles)
distinct = sorted(set(titles))
first = {t: i for i, t in reversed(list(enumerate(titles)))}
dv = tv[[first[t] for t in distinct]]
seed_rows = random.Random(0).sample(range(len(val)), 1000)
st = [titles[i] for i in seed_rows]
bank = model.encode_texts(sample_bank([p.text for p in splits.train]))
cats = []
for field in CATEGORY_FIELDS:
    keys = [p.attributes.get(field, "").strip() for p in val]
    values = sorted({k for k in keys if k.lower() not in MISSING})
    cats.append((model.encode_texts(values), values, keys))


def norm(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def report(name, gallery, qfun=None, alpha=0.5):
    r = hubness(gallery, bank, 10)
    q = dv if qfun is None else qfun(dv, gallery)
    title = summarise(ranked_relevance(q @ gallery.T - alpha * r, distinct, titles), recall="share")
    sq = tv[seed_rows] if qfun is None else qfun(tv[seed_rows], gallery[seed_rows])
    seed = summarise(ranked_relevance(sq @ gallery[seed_rows].T - alpha * r[seed_rows], st, st))
    iseed = summarise(ranked_relevance(gallery[seed_rows] @ tv[seed_rows].T, st, st))
    p10 = [
        precision_summary(ranked_relevance(v @ gallery.T, vals, keys))["P@10"]
        for v, vals, keys in cats
    ]
    print(
        f"{name:<24} title R@10 {title['R@10']:.3f} MRR {title['MRR@10']:.3f} | seed t2i R@1 {seed['R@1']:.3f} R@10 {seed['R@10']:.3f} | i2t R@1 {iseed['R@1']:.3f} R@10 {iseed['R@10']:.3f} | cat P@10 "
        + " / ".join(f"{x:.3f}" for x in p10),
        flush=True,
    )


report("plain", photos)
report("flip TTA", norm(photos + flipped))


def prf(beta, m):
    def f(q, g):
        s = q @ g.T
        top = np.argsort(-s, axis=1)[:, :m]
        return norm(q + beta * g[top].mean(axis=1))

    return f


for beta, m in ((0.3, 3), (0.5, 3), (0.5, 5), (1.0, 3)):
    report(f"PRF b{beta} m{m}", photos, prf(beta, m))
for m, w in ((2, 0.5), (3, 0.5)):
    s = photos @ photos.T
    top = np.argsort(-s, axis=1)[:, 1 : m + 1]
    report(f"DBA m{m} w{w}", norm(photos + w * photos[top].sum(axis=1) / m))
