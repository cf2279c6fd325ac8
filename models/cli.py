"""`fashion-retrieval export-onnx`: export a model artifact's towers for ONNX Runtime."""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from models import exits
from models.artifact import DEFAULT_MODEL_DIR, load_model
from models.catalog import read_catalog
from models.encoders import INSTALL_HINT, onnx_available
from models.errors import ModelsError
from models.exits import exit_codes_help

EXAMPLE = """example:
  fashion-retrieval export-onnx --catalog data/sample/catalog.csv

Writes ARTIFACT/onnx/<model id>/ (image.onnx, text.onnx or text-int8.onnx, export.json),
or the user's cache folder when the artifact's folder is read-only. `serve` and `index
build` export on first use anyway; run this to do it ahead (a container image build) or
to check the int8 text tower on a catalogue's titles: it is kept only when every probe
text's embedding stays within cosine 0.995 of PyTorch's.

""" + exit_codes_help("no ONNX Runtime, a bad model or catalogue")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="fashion-retrieval export-onnx",
        description="export a model's towers to ONNX for the faster CPU encoder",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, help="model artifact (default: the bundled one)")
    parser.add_argument(
        "--catalog",
        type=Path,
        help="with --int8: also check on this catalogue's titles and attribute values",
    )
    parser.add_argument(
        "--max-probes", type=int, default=5000, metavar="N", help="catalogue texts checked (5000)"
    )
    parser.add_argument(
        "--int8", action="store_true", help="try an int8 text tower (kept only if it passes)"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not onnx_available():
        print(f"error: ONNX Runtime is missing: {INSTALL_HINT}", file=sys.stderr)
        return exits.ERROR
    from models.onnx_export import PROBE_TEXTS, cache_dir_for, export_onnx

    try:
        model = load_model(args.model, device="cpu")
        probes = list(PROBE_TEXTS)
        if args.catalog is not None:
            products = read_catalog(args.catalog).products
            texts = {p.text for p in products} | {
                v for p in products for v in p.attributes.values()
            }
            probes += random.Random(0).sample(sorted(texts), min(args.max_probes, len(texts)))
        directory = cache_dir_for(args.model or DEFAULT_MODEL_DIR, model.model_id)
        info = export_onnx(model, directory, probe_texts=probes, int8=args.int8)
    except (ModelsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exits.ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exits.INTERRUPTED
    cosine = (
        ""
        if info.text_int8_min_cosine is None
        else f", int8 min cosine {info.text_int8_min_cosine:.4f}"
    )
    print(f"{directory}: text tower {info.text}{cosine} on {info.probe_texts} probe texts")
    return exits.OK
