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

import sys

import numpy as np
from val_tasks import ValTasks, norm  # this folder's shared val scoring

from models import load_model
from models.catalog import read_catalog
from training.data import SplitSpec

model = load_model(sys.argv[1], device="cpu")
splits = SplitSpec.from_metrics(model.metrics).split(
    read_catalog("../shared/data/kagl/catalog.csv").products
)
val = splits.val
pix = [model.preprocess(p.image) for p in val]
photos = model.encode_images(pix)
flipped = model.encode_images([np.ascontiguousarray(a[:, :, ::-1]) for a in pix])
tasks = ValTasks(model, val, splits.train)
report = tasks.report


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
