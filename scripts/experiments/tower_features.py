"""Pooled tower features (before the projections) of every KAGL product, for head_sweep.py.

    python scripts/experiments/tower_features.py --model MODEL_DIR --out runs/scratch/ft
    python scripts/experiments/tower_features.py --pretrained --out runs/scratch/pre

Rows follow the split order (train, val, test). The first 8 Lite0 blocks are frozen in
both cases, so their output comes from the `lite0-minilm` run's prefix cache (train
photos) and from runs/scratch/prefix_rest.pt (val + test photos, computed once).
Writes OUT_image.npy and OUT_text.npy (float16).
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from models import load_model, open_image, read_catalog
from models.joint import build_model
from training.config import load_config
from training.data import split_products

FROZEN_BLOCKS = 8
TRAIN_PREFIX = Path("runs/lite0-minilm/prefix_cache_329f83a43ac5aa48.pt")
REST_PREFIX = Path("runs/scratch/prefix_rest.pt")

parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
)
source = parser.add_mutually_exclusive_group(required=True)
source.add_argument("--model", help="artifact directory")
source.add_argument("--pretrained", action="store_true", help="untouched lite0-minilm towers")
parser.add_argument("--out", required=True, help="path prefix of the two .npy files")
args = parser.parse_args()

torch.set_num_threads(1)
model = (
    build_model(load_config("lite0-minilm").model)
    if args.pretrained
    else load_model(args.model, device="cpu")
)
model.eval()
splits = split_products(read_catalog("../shared/data/kagl/catalog.csv").products)
order = splits.train + splits.val + splits.test

with torch.inference_mode():
    texts = [p.text for p in order]
    text = torch.cat(
        [model.text_tower(**model.tokenize(texts[i : i + 512])) for i in range(0, len(texts), 512)]
    )
    if not REST_PREFIX.is_file():
        rest = order[len(splits.train) :]
        batches = (
            model.transform.batch([open_image(p.image) for p in rest[i : i + 128]])
            for i in range(0, len(rest), 128)
        )
        torch.save(
            torch.cat([model.image_tower.prefix(b, FROZEN_BLOCKS).half() for b in batches]),
            REST_PREFIX,
        )
    prefix = torch.cat(
        [torch.load(TRAIN_PREFIX, weights_only=True), torch.load(REST_PREFIX, weights_only=True)]
    )
    image = torch.cat(
        [
            model.image_tower.forward_from(prefix[i : i + 512].float(), FROZEN_BLOCKS)
            for i in range(0, len(order), 512)
        ]
    )
np.save(f"{args.out}_image.npy", image.half().numpy())
np.save(f"{args.out}_text.npy", text.half().numpy())
print(
    f"wrote {args.out}_image.npy {tuple(image.shape)} and {args.out}_text.npy {tuple(text.shape)}"
)
