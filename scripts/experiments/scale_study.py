"""Photos encoded at several input sizes and their embeddings averaged (multi-scale
test-time augmentation), on the val split as training selects its epochs.

    python scripts/experiments/scale_study.py MODEL_DIR --catalog ../shared/data/kagl/catalog.csv \
        --sizes 160x120 144x108 112x84 [--no-flip]

For the model's own input size and each of `--sizes` (HEIGHTxWIDTH), every val photo
is encoded (mirror averaged as the model's config says, or not with --no-flip), and
each line prints the selection score (title task recall@10 plus the category tasks'
mean P@10, every val photo the gallery, cosine), the title task's recall@10 and
MRR@10 and the four category tasks' P@10: for the own size, each size alone, and the
own size's embedding averaged with each size's. docs/training-log.md has the results.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from models import JointModel, load_model, read_catalog
from models.catalog import Product
from models.transforms import ImageTransform
from training.data import SplitSpec
from training.evaluate import evaluate_catalog, evaluate_categories, selection_score


def _size(text: str) -> tuple[int, int]:
    height, _, width = text.partition("x")
    return int(height), int(width)


def _encode(model: JointModel, val: list[Product], size: tuple[int, int]) -> np.ndarray:
    model.transform = ImageTransform(
        replace(model.config.preprocess, height=size[0], width=size[1])
    )
    started = time.perf_counter()
    photos = model.encode_images([p.image for p in val])
    print(
        f"encoded {len(val)} photos at {size[0]}x{size[1]} in {time.perf_counter() - started:.0f} s"
    )
    return photos


def _line(name: str, model: JointModel, val: list[Product], photos: np.ndarray) -> str:
    title = evaluate_catalog(model, val, val, gallery_embeddings=(photos, None))["text_to_image"]
    categories = evaluate_categories(model, val, val, gallery_embeddings=photos)
    p10 = " / ".join(f"{c['P@10']:.3f}" for c in categories.values())
    score = selection_score(title, categories)
    return f"{name:<22} {score:>7.4f} {title['R@10']:>11.3f} {title['MRR@10']:>8.3f}  {p10}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--sizes", nargs="+", type=_size, default=[(160, 120)])
    parser.add_argument("--no-flip", action="store_true", help="encode without mirror averaging")
    args = parser.parse_args()

    model = load_model(args.model, device="cpu")
    if args.no_flip:
        model.config = replace(model.config, image_flip_average=False)
    val = SplitSpec.from_metrics(model.metrics).split(read_catalog(args.catalog).products).val
    own = (model.config.preprocess.height, model.config.preprocess.width)
    photos = {size: _encode(model, val, size) for size in [own, *args.sizes]}

    def name(size: tuple[int, int]) -> str:
        return f"{size[0]}x{size[1]}"

    lines = [_line(name(own), model, val, photos[own])]
    for size in args.sizes:
        both = photos[own] + photos[size]
        both /= np.linalg.norm(both, axis=1, keepdims=True)
        lines.append(_line(name(size), model, val, photos[size]))
        lines.append(_line(f"{name(own)} + {name(size)}", model, val, both))
    flip = "mirror averaged" if model.config.image_flip_average else "no mirror averaging"
    print(f"\nval split, {len(val)} photos, {flip}, model {model.model_id}")
    print(f"{'sizes':<22} {'score':>7} {'title R@10':>11} {'MRR@10':>8}  category P@10 (4 tasks)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
