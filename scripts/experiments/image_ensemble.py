"""Two or more image towers that share one text space, averaged, on the val split.

    python scripts/experiments/image_ensemble.py MODEL_DIR OTHER_DIR [OTHER_DIR ...]

MODEL_DIR gives the text side (and the first photo embedding); each OTHER_DIR must
embed texts exactly as it does (trained with `--init-text MODEL_DIR` and `[optim]
freeze_text`, as run 13's Lite0 and Lite2 were; float16 storage aside). Every photo
is encoded by each model, mirror-averaged, and the unit embeddings are averaged with
the weights of each line.
Each line prints what search_time_study.py prints: the title task with the val photos
as the gallery (text queries hubness-corrected with MODEL_DIR's query bank, alpha 0.5),
the seed protocol both ways (1,000-product val gallery) and the category tasks' P@10
(docs/training-log.md, run 14; results/image_ensemble-val.txt).
"""

from __future__ import annotations

import itertools
import sys

import numpy as np
from val_tasks import ValTasks, norm  # this folder's shared val scoring

from models import load_model
from models.catalog import read_catalog
from training.data import SplitSpec

dirs = sys.argv[1:]
models = [load_model(d, device="cpu") for d in dirs]
base = models[0]
splits = SplitSpec.from_metrics(base.metrics).split(
    read_catalog("../shared/data/kagl/catalog.csv").products
)
val = splits.val
tasks = ValTasks(base, val, splits.train)
for d, m in zip(dirs[1:], models[1:], strict=True):
    # float16 and float32 copies of one text side differ by about 1e-3
    gap = float(np.abs(m.encode_texts(tasks.titles[:500]) - tasks.tv[:500]).max())
    if gap > 1e-2:
        sys.exit(f"{d} embeds texts unlike {dirs[0]} (max gap {gap:.2g}): not one text space")
photos = []
for d, m in zip(dirs, models, strict=True):
    pix = [m.preprocess(p.image) for p in val]
    mirrored = [np.ascontiguousarray(a[:, :, ::-1]) for a in pix]
    photos.append(norm(m.encode_images(pix) + m.encode_images(mirrored)))
    print(f"encoded {len(val)} val photos with {d}", flush=True)
report = tasks.report


names = [f"m{i}" for i in range(len(dirs))]
for i, name in enumerate(names):
    report(name, photos[i])
for size in range(2, len(dirs) + 1):
    for combo in itertools.combinations(range(len(dirs)), size):
        report("+".join(names[i] for i in combo), norm(sum(photos[i] for i in combo)))
for other in range(1, len(dirs)):
    for w in (0.25, 0.5):
        report(f"m0+{w}*m{other}", norm(photos[0] + w * photos[other]))
