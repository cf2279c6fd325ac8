"""Copy a trained artifact into models/default with float16 weights, after checking
that the seed-protocol metrics on the validation split do not move. An artifact
without a query bank or a photo bank (trained before they existed) gets them from the
catalogue's training split (models.hubness.sample_bank and encode_photo_bank, seed 0).

    python scripts/bundle_default_model.py runs/lite0-minilm/model --catalog ../shared/data/kagl/catalog.csv
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path

from models import DEFAULT_MODEL_DIR, load_model, read_catalog, read_metrics, save_artifact
from models.hubness import encode_photo_bank, photo_bank_of, sample_bank
from training.data import SplitSpec
from training.evaluate import evaluate_seed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument(
        "--float32",
        nargs="*",
        default=[],
        metavar="PREFIX",
        help="state-dict key prefixes kept in float32 (e.g. image_tower. image_head.)",
    )
    parser.add_argument(
        "--image-flip-average",
        action="store_true",
        help="encode each photo and its mirror image and average them (ModelConfig."
        "image_flip_average; a new model id: indices must be rebuilt)",
    )
    parser.add_argument(
        "--image-scales",
        nargs="+",
        type=float,
        default=[],
        metavar="SCALE",
        help="also encode each photo at these sizes relative to the input size and average "
        "(ModelConfig.image_scales, e.g. 1.25; a new model id: indices must be rebuilt)",
    )
    args = parser.parse_args()

    full = load_model(args.artifact, device="cpu")
    encoding = full.config
    if args.image_flip_average:
        full.config = replace(full.config, image_flip_average=True)
    if args.image_scales:
        full.config = replace(full.config, image_scales=tuple(args.image_scales))
    splits = SplitSpec.from_metrics(full.metrics).split(read_catalog(args.catalog).products)
    val = splits.val
    bank = full.query_bank or sample_bank([p.text for p in splits.train])
    # a bank encoded another way (mirror averaging, scales) no longer matches the photos
    photo_bank = None if full.config != encoding else photo_bank_of(full)
    if photo_bank is None:
        photo_bank = encode_photo_bank(full, [p.image for p in splits.train])
    before = evaluate_seed(full, val)
    staging = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    save_artifact(
        full,
        staging,
        metrics=read_metrics(args.artifact),
        weights_dtype="float16",
        float32_prefixes=args.float32,
        query_bank=bank,
        photo_bank=photo_bank,
    )
    after = evaluate_seed(load_model(staging, device="cpu"), val)
    for direction in before:
        for metric in ("R@1", "R@5", "R@10", "mAP"):
            print(
                f"{direction:<14} {metric:<5} float32 {before[direction][metric]:.4f}  float16 {after[direction][metric]:.4f}"
            )
    worst = max(
        abs(before[d][m] - after[d][m]) for d in before for m in ("R@1", "R@5", "R@10", "mAP")
    )
    if worst > 0.005:
        raise SystemExit(
            f"float16 weights move the metrics by {worst:.4f}; keeping float32 instead"
        )
    shutil.rmtree(args.out, ignore_errors=True)
    staging.rename(args.out)
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(json.dumps({"bundled": str(args.out), "bytes": size, "largest_metric_change": worst}))


if __name__ == "__main__":
    main()
