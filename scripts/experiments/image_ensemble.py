"""Two or more image towers that share one text space, averaged, on the val split.

    python scripts/experiments/image_ensemble.py MODEL_DIR OTHER_DIR [OTHER_DIR ...]

MODEL_DIR gives the text side (and the first photo embedding); each OTHER_DIR must
embed texts exactly as it does (trained with `--init-text MODEL_DIR` and `[optim]
freeze_text`, as run 13's Lite0 and Lite2 were; float16 storage aside). Every photo is encoded by each model,
mirror-averaged, and the unit embeddings are averaged with the weights of each line.
Each line prints what search_time_study.py prints: the title task with the val photos
as the gallery (text queries hubness-corrected with MODEL_DIR's query bank, alpha 0.5),
the seed protocol both ways (1,000-product val gallery) and the category tasks' P@10
(docs/training-log.md, run 14; results/image_ensemble-val.txt).
"""

from __future__ import annotations

import itertools
import random
import sys

import numpy as np

from models.catalog import read_catalog
from models import load_model
from models.hubness import hubness, sample_bank
from training.data import SplitSpec
from training.evaluate import CATEGORY_FIELDS
from training.metrics import precision_summary, ranked_relevance, summarise
from training.queries import MISSING


def norm(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


dirs = sys.argv[1:]
models = [load_model(d, device="cpu") for d in dirs]
base = models[0]
splits = SplitSpec.from_metrics(base.metrics).split(
    read_catalog("../shared/data/kagl/catalog.csv").products
)
val = splits.val
titles = [p.text for p in val]
tv = base.encode_texts(titles)
for d, m in zip(dirs[1:], models[1:], strict=True):
    # float16 and float32 copies of one text side differ by about 1e-3
    gap = float(np.abs(m.encode_texts(titles[:500]) - tv[:500]).max())
    if gap > 1e-2:
        sys.exit(f"{d} embeds texts unlike {dirs[0]} (max gap {gap:.2g}): not one text space")
photos = []
for d, m in zip(dirs, models, strict=True):
    pix = [m.preprocess(p.image) for p in val]
    mirrored = [np.ascontiguousarray(a[:, :, ::-1]) for a in pix]
    photos.append(norm(m.encode_images(pix) + m.encode_images(mirrored)))
    print(f"encoded {len(val)} val photos with {d}", flush=True)

distinct = sorted(set(titles))
first = {t: i for i, t in reversed(list(enumerate(titles)))}
dv = tv[[first[t] for t in distinct]]
seed_rows = random.Random(0).sample(range(len(val)), 1000)
st = [titles[i] for i in seed_rows]
bank = base.encode_texts(sample_bank([p.text for p in splits.train]))
cats = []
for field in CATEGORY_FIELDS:
    keys = [p.attributes.get(field, "").strip() for p in val]
    values = sorted({k for k in keys if k.lower() not in MISSING})
    cats.append((base.encode_texts(values), values, keys))


def report(name: str, gallery: np.ndarray, alpha: float = 0.5) -> None:
    r = hubness(gallery, bank, 10)
    title = summarise(
        ranked_relevance(dv @ gallery.T - alpha * r, distinct, titles), recall="share"
    )
    sg = gallery[seed_rows]
    seed = summarise(ranked_relevance(tv[seed_rows] @ sg.T - alpha * r[seed_rows], st, st))
    iseed = summarise(ranked_relevance(sg @ tv[seed_rows].T, st, st))
    p10 = [
        precision_summary(ranked_relevance(v @ gallery.T, vals, keys))["P@10"]
        for v, vals, keys in cats
    ]
    print(
        f"{name:<28} title R@10 {title['R@10']:.3f} MRR {title['MRR@10']:.3f} | seed t2i R@1 "
        f"{seed['R@1']:.3f} R@10 {seed['R@10']:.3f} | i2t R@1 {iseed['R@1']:.3f} R@10 "
        f"{iseed['R@10']:.3f} | cat P@10 " + " / ".join(f"{x:.3f}" for x in p10),
        flush=True,
    )


names = [f"m{i}" for i in range(len(dirs))]
for i, name in enumerate(names):
    report(name, photos[i])
for size in range(2, len(dirs) + 1):
    for combo in itertools.combinations(range(len(dirs)), size):
        report("+".join(names[i] for i in combo), norm(sum(photos[i] for i in combo)))
for other in range(1, len(dirs)):
    for w in (0.25, 0.5):
        report(f"m0+{w}*m{other}", norm(photos[0] + w * photos[other]))
