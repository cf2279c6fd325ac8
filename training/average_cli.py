"""`fashion-retrieval average`: average fine-tuned models' weights into a new artifact,
scored on the val split the way training selects its epochs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from models import JointModel, ModelsError, exits, load_model, read_catalog, save_artifact
from models.exits import exit_codes_help
from models.hubness import encode_photo_bank, sample_bank
from training.average import average_models
from training.data import SplitSpec
from training.validation import validate

EXAMPLE = f"""example:
  fashion-retrieval average runs/seed1/model runs/seed4/model --catalog data/sample/catalog.csv --out runs/soup
  fashion-retrieval average A B --weights 0.7 0.3 --score-inputs --catalog ... --out ...

The models must be fine-tunes of one architecture (the same config and vocabulary),
best from one start: their average is scored on the val split of the first model's split
(the title task's R@10 plus the category tasks' mean P@10, as training selects epochs)
and written with float32 weights (bundle it with scripts/bundle_default_model.py), the
first model's query bank and a photo bank encoded by the averaged model.

{exit_codes_help("a bad or missing catalogue or model, or models that cannot be averaged")}
"""


def _weight(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fashion-retrieval average",
        description="Average the weights of fine-tuned models (a model soup) into a new artifact.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "models", nargs="+", type=Path, metavar="MODEL", help="artifact directories"
    )
    parser.add_argument(
        "--catalog", required=True, type=Path, help="the catalogue they were trained on"
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="where to write the averaged artifact (replaced if it exists)",
    )
    parser.add_argument(
        "--weights",
        nargs="+",
        type=_weight,
        metavar="W",
        help="one weight per model, summing to 1 (default: equal weights)",
    )
    parser.add_argument(
        "--score-inputs",
        action="store_true",
        help="also score each model on val beside the average (a few minutes each on a CPU)",
    )
    return parser


def _row(name: str, metrics: dict[str, Any], score: float) -> str:
    title = metrics["title_to_photo"]
    categories = " / ".join(f"{m['P@10']:.3f}" for m in metrics["categories"].values())
    seed = " / ".join(f"{metrics[d]['R@1']:.3f}" for d in ("text_to_image", "image_to_text"))
    return (
        f"{name:<40} {score:>7.4f} {title['R@10']:>11.3f} {title['MRR@10']:>8.3f}  "
        f"{categories:<30} {seed}"
    )


HEADER = (
    f"{'val split':<40} {'score':>7} {'title R@10':>11} {'MRR@10':>8}  "
    f"{'category P@10 (4 tasks)':<30} seed R@1 t->i / i->t"
)


def run(args: argparse.Namespace) -> int:
    if args.weights is not None and len(args.weights) != len(args.models):
        raise ValueError(f"{len(args.models)} models but {len(args.weights)} weights")
    if args.out.resolve() in {path.resolve() for path in args.models}:
        raise ValueError(f"--out {args.out} is one of the models: it would be replaced")
    model = average_models(args.models, args.weights)
    splits = SplitSpec.from_metrics(model.metrics).split(read_catalog(args.catalog).products)
    if not splits.val or not splits.train:
        raise ValueError(f"{args.catalog} has no val or no training products to score with")
    rows = []
    if args.score_inputs:
        for path in args.models:
            alone = _encoding_like(load_model(path, device="cpu"), model)
            rows.append(_row(str(path), *validate(alone, splits.val)))
    val, score = validate(model, splits.val)
    rows.append(_row("average", val, score))
    model_id = save_artifact(
        model,
        args.out,
        metrics={**model.metrics, "val": val, "score": score},
        query_bank=model.query_bank or sample_bank([p.text for p in splits.train]),
        photo_bank=encode_photo_bank(model, [p.image for p in splits.train]),
    )
    print("\n".join([HEADER, *rows]))
    print(json.dumps({"averaged": str(args.out), "model": model_id, "score": round(score, 4)}))
    return 0


def _encoding_like(model: JointModel, average: JointModel) -> JointModel:
    """`model` encoding photos as the average does (mirror averaging, scales), so that
    the scores compare weights alone."""
    model.config = model.config.encoding_like(average.config)
    return model


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ModelsError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exits.ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exits.INTERRUPTED
