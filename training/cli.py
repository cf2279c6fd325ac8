"""`fashion-retrieval train` and `fashion-retrieval evaluate`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from models import ConfigError, ModelsError, exits, read_catalog
from models.artifact import DEVICES, read_metrics, write_metrics
from models.encoders import RUNTIMES, load_encoder
from models.exits import exit_codes_help
from models.fusion import DEFAULT_PRODUCT_WEIGHTS, ProductWeights, parse_weights
from models.hubness import DEFAULT_ALPHA
from models.progress import LOG_INTERVAL_S
from training.config import available_configs, load_config
from training.data import SplitSpec
from training.evaluate import (
    PROTOCOLS,
    TARGETS,
    Correction,
    evaluate_catalog_tasks,
    evaluate_seed,
    format_categories,
    format_table,
)
from training.loop import train

logger = logging.getLogger(__name__)

EXIT_CODES = exit_codes_help("a bad or missing catalogue, config, model or split")

TRAIN_EXAMPLE = """example:
  fashion-retrieval train --catalog data/sample/catalog.csv --config lite0-minilm --out runs/lite0
  torchrun --nproc_per_node 2 -m fashion_retrieval train --catalog ... --config ... --out ...
configs: {configs}

Progress goes to stderr: a bar on a terminal, otherwise (a log) a plain line every {interval:.0f} s.
{exit_codes}
"""

EVALUATE_EXAMPLE = f"""example:
  fashion-retrieval evaluate --model runs/lite0/model --catalog data/sample/catalog.csv --split test --protocol seed
  fashion-retrieval evaluate --catalog data/sample/catalog.csv --protocol catalog --target image product

{EXIT_CODES}
"""

DEVICE_HELP = "auto (CUDA when PyTorch sees a GPU, else CPU), cpu or cuda (default: auto)"


def _positive(text: str) -> int:
    value = int(text) if text.strip().lstrip("+").isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, not {text!r}")
    return value


def _weights(text: str) -> ProductWeights:
    try:
        return parse_weights(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model on a catalogue and write an artifact",
        description="Train a joint image-text model (Deep CMPL, Siamese or Correlational network) on the "
        "catalogue's train split, validate each epoch, keep the best artifact in OUT/model.",
        epilog=TRAIN_EXAMPLE.format(
            configs=", ".join(available_configs()), interval=LOG_INTERVAL_S, exit_codes=EXIT_CODES
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--catalog", required=True, type=Path, help="catalogue CSV or JSON Lines")
    parser.add_argument(
        "--config", required=True, help="config name (training/configs) or TOML path"
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="run directory: model/, checkpoint.pt, train_log.jsonl",
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--init",
        type=Path,
        metavar="MODEL_DIR",
        help="start from this artifact's weights (e.g. models/default) instead of the "
        "pretrained towers: fine-tune a trained model on your catalogue",
    )
    start.add_argument(
        "--init-text",
        type=Path,
        metavar="MODEL_DIR",
        help="take only this artifact's text side (tower, projection, tokenizer); the image "
        "side starts as the config says: another image tower trained into its text space "
        "(with [optim] freeze_text = true the text side stays as it is)",
    )
    parser.add_argument("--device", choices=DEVICES, default="auto", help=DEVICE_HELP)
    parser.add_argument("--epochs", type=_positive, help="override the config's number of epochs")
    parser.add_argument(
        "--seed",
        type=int,
        help="override the config's seed (batches, flips, query wordings; the split and the "
        "val gallery keep theirs): runs of one recipe to compare or average",
    )
    parser.set_defaults(handler=run_train)


def add_evaluate_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a model: R@1/5/10, median rank, mAP, MRR@10 in both directions",
        description="Evaluate a model artifact on a split of a catalogue with the seed protocol "
        "(a sampled gallery, every product a query both ways) or the catalog protocol "
        "(distinct titles of the split against every product of the catalogue).",
        epilog=EVALUATE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model", type=Path, help="artifact directory (default: the bundled model)"
    )
    parser.add_argument("--catalog", required=True, type=Path)
    parser.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    parser.add_argument("--protocol", default="seed", choices=PROTOCOLS)
    parser.add_argument("--gallery-size", type=int, default=1000, help="seed protocol gallery size")
    parser.add_argument(
        "--target",
        nargs="+",
        choices=TARGETS,
        default=["image"],
        help="catalog protocol: search the photos, the product vectors (photo and title "
        "fused), or both (default: image)",
    )
    parser.add_argument(
        "--product-weights",
        type=_weights,
        default=DEFAULT_PRODUCT_WEIGHTS,
        help="w_image,w_text of the product vectors (default 0.9,0.1, as the indexer)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampled gallery")
    parser.add_argument(
        "--hubness-alpha",
        type=float,
        default=DEFAULT_ALPHA,
        metavar="ALPHA",
        help="rank as the service does: hubness-corrected with this alpha, text queries "
        "over photos and product vectors against the model's query bank, photo queries "
        f"over titles against its photo bank (default {DEFAULT_ALPHA}; 0: plain cosine; "
        "a model without banks is never corrected)",
    )
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument(
        "--save-to-model",
        action="store_true",
        help="also record the results in the artifact's metrics.json",
    )
    parser.add_argument("--device", choices=DEVICES, default="auto", help=DEVICE_HELP)
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="torch",
        help="what encodes on the CPU: torch (the reference, default), or the service's "
        "engines: auto, openvino, onnx (several times faster on a large catalogue; "
        "their embeddings are within cosine 0.995 of PyTorch's)",
    )
    parser.set_defaults(handler=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.epochs is not None:
        config = replace(config, optim=replace(config.optim, epochs=args.epochs))
    if args.seed is not None:
        config = replace(config, seed=args.seed)
    artifact = train(
        config,
        args.catalog,
        args.out,
        resume=args.resume,
        init=args.init,
        init_text=args.init_text,
        device=args.device,
    )
    if os.environ.get("RANK", "0") == "0":  # under torchrun, say it once
        print(f"best model: {artifact}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    model = load_encoder(args.model, args.device, runtime=args.runtime)
    catalog = read_catalog(args.catalog)
    splits = SplitSpec.from_metrics(model.metrics).split(catalog.products)
    products = catalog.products if args.split == "all" else splits.get(args.split)
    if not products:
        print(f"error: the {args.split} split of {args.catalog} is empty", file=sys.stderr)
        return 1
    report: dict[str, object] = {
        "protocol": args.protocol,
        "split": args.split,
        "model": model.model_id,
        "catalog": str(args.catalog),
        "runtime": args.runtime,
    }
    if args.hubness_alpha < 0:
        raise ValueError(f"--hubness-alpha must not be negative, got {args.hubness_alpha}")
    correction = Correction.of(model, args.hubness_alpha)
    report["hubness"] = correction.describe() if correction is not None else None
    if correction is not None:
        banks = correction.describe()
        print(
            f"ranked as the service ranks: hubness-corrected with alpha {correction.alpha}, "
            f"text queries of {correction.min_words}+ words over photos and product vectors "
            f"against {banks['bank']:.0f} bank queries, photo queries over titles against "
            f"{banks['photo_bank']:.0f} bank photos (--hubness-alpha 0: plain cosine)"
        )
    if args.protocol == "seed":
        results = evaluate_seed(
            model,
            products,
            gallery_size=args.gallery_size,
            seed=args.seed,
            correction=correction,
        )
        print(format_table(results, f"seed protocol, {args.split} split, model {model.model_id}"))
        report["results"] = results
    else:
        weights = args.product_weights
        tasks = evaluate_catalog_tasks(
            model,
            products,
            catalog.products,
            targets=args.target,
            product_weights=weights,
            correction=correction,
        )
        for target, found in tasks.items():
            title = f"catalog protocol, {args.split} split, target {target}, model {model.model_id}"
            print(format_table(found["results"], title))
            print(format_categories(found["categories"]))
            key = "" if target == "image" else f"{target}_"
            report[f"{key}results"] = found["results"]
            report[f"{key}categories"] = found["categories"]
        if "product" in tasks:
            report["product_weights"] = list(weights)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.save_to_model and args.model:
        metrics = read_metrics(args.model)
        metrics.setdefault("evaluation", {})[f"{args.protocol}-{args.split}"] = report
        write_metrics(args.model, metrics)
    return 0


def main(argv: list[str]) -> int:
    """Run `train ...` or `evaluate ...`; returns the exit code (see EXIT_CODES). A usage
    error exits with 2 from argparse."""
    parser = argparse.ArgumentParser(prog="fashion-retrieval")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_train_parser(subparsers)
    add_evaluate_parser(subparsers)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ModelsError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exits.ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exits.INTERRUPTED
