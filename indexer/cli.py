"""`fashion-retrieval index ...`: build, update, inspect and verify index directories.

Each command parses its options, calls one library function and returns an exit code;
errors are printed as one clear line on stderr, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from indexer.build import build_index
from indexer.cli_common import (
    describe_work,
    encoding_options,
    report_problems,
    report_skipped,
)
from indexer.encode import DEFAULT_BATCH_SIZE, PROGRESS_INTERVAL_S
from indexer.errors import IndexerError
from indexer.info import describe_index
from indexer.milvus import cli as milvus_cli
from indexer.skips import DEFAULT_MAX_SKIPPED
from indexer.update import update_index
from indexer.verify import verify_index
from indexer.versions import BuildReport
from models import exits
from models.artifact import DEVICES
from models.encoders import RUNTIMES, load_encoder
from models.errors import ConfigError, ModelsError
from models.exits import exit_codes_help
from models.fusion import DEFAULT_PRODUCT_WEIGHTS, ProductWeights, parse_weights
from models.images import DEFAULT_MAX_PIXELS

PROG = "fashion-retrieval index"
EXIT_CODES = exit_codes_help("a bad catalogue, model or index, a locked index, a failed verify")

BUILD_EXAMPLE = """example:
  fashion-retrieval index build --catalog data/sample/catalog.csv --out var/index
  fashion-retrieval index build --catalog data/sample/catalog.csv --backend milvus \
      --milvus-uri var/milvus.db --collection fashion_products

Encodes every product's image and text (through an embedding cache in OUT/cache, so a
build re-run after a crash only encodes what is missing), fuses them into product
vectors (--product-weights) and publishes a new version of OUT atomically, one FAISS
index per search target (image, text, product); the previous version keeps serving
until the new one is complete. With --backend milvus the version is a new collection
and the alias --collection moves onto it once it is checked (README: Scaling out)."""

UPDATE_EXAMPLE = """examples:
  fashion-retrieval index update --index var/index --catalog new-products.csv
  fashion-retrieval index update --index var/index --delete 1528 1539
  fashion-retrieval index update --index var/index --delete-file discontinued.txt
  fashion-retrieval index update --backend milvus --milvus-uri http://milvus:19530 --delete 1528

Products of the catalogue whose id the index holds are replaced, others added. The model
must be the one the index was built with. Publishes a new version atomically (FAISS); on
Milvus, upserts and deletes on the published collection, batch by batch."""

INFO_EXAMPLE = """example:
  fashion-retrieval index info var/index
  fashion-retrieval index info --backend milvus --milvus-uri var/milvus.db"""

VERIFY_EXAMPLE = """example:
  fashion-retrieval index verify var/index && echo index is sound
  fashion-retrieval index verify --backend milvus --milvus-uri http://milvus:19530

Exit code 0 only when every checksum matches and all files agree on the products."""


def _subparser(
    commands: argparse._SubParsersAction, name: str, description: str, example: str
) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=description,
        description=description,
        epilog=f"{example}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=Path,
        metavar="DIR",
        help="model artifact directory (default: the bundled default model)",
    )
    parser.add_argument(
        "--device", choices=DEVICES, default="auto", help="where the model encodes (default: auto)"
    )
    parser.add_argument(
        "--encoder",
        choices=RUNTIMES,
        default="auto",
        help="what encodes on the CPU: ONNX Runtime when installed (auto), onnx, or torch "
        "(default: auto; PyTorch on CUDA)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        default=DEFAULT_BATCH_SIZE,
        help=f"products per encoding batch (default: {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="embedding cache directory (default: INDEX_DIR/cache)",
    )
    parser.add_argument(
        "--max-skipped",
        metavar="N|P%",
        default=DEFAULT_MAX_SKIPPED,
        help="rows that may be skipped (malformed, or a photo missing, unreadable or over "
        "the pixel budget) before the command fails and publishes nothing: a count (25) "
        f"or a share of the catalogue (0.5%%) (default: {DEFAULT_MAX_SKIPPED.replace('%', '%%')})",
    )
    parser.add_argument(
        "--max-image-pixels",
        type=int,
        metavar="N",
        default=DEFAULT_MAX_PIXELS,
        help=f"skip photos over N pixels, read from their header (default: {DEFAULT_MAX_PIXELS:,})",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress (else a bar on a terminal, a plain line every "
        f"{PROGRESS_INTERVAL_S:.0f} s on stderr in a log)",
    )


def _add_build(commands: argparse._SubParsersAction) -> None:
    build = _subparser(
        commands, "build", "encode a catalogue and publish a new index version", BUILD_EXAMPLE
    )
    build.add_argument(
        "--catalog", type=Path, required=True, metavar="CSV", help="catalogue (CSV or JSON Lines)"
    )
    build.add_argument(
        "--out", type=Path, metavar="DIR", help="index directory to publish into (FAISS)"
    )
    build.add_argument(
        "--index-type",
        metavar="STR",
        help="FAISS factory string, e.g. Flat, IVF4096,Flat, HNSW32,Flat (default: by size)",
    )
    build.add_argument(
        "--copy-images", action="store_true", help="copy product images into the index"
    )
    build.add_argument(
        "--product-weights",
        type=_weights,
        default=DEFAULT_PRODUCT_WEIGHTS,
        metavar="W_IMAGE,W_TEXT",
        help="weights of photo and title in the product vectors, searched as target "
        "'product' (default: 0.9,0.1); updates reuse them",
    )
    _add_model_options(build)
    build.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes decoding photos while the model encodes (default: one per core "
        "but one, for catalogues of 2,000 products or more; 0: none)",
    )
    milvus_cli.add_backend_options(build, build=True)


def _weights(text: str) -> ProductWeights:
    try:
        return parse_weights(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _add_update(commands: argparse._SubParsersAction) -> None:
    update = _subparser(
        commands,
        "update",
        "add, replace or delete products and publish a new version",
        UPDATE_EXAMPLE,
    )
    update.add_argument(
        "--index", type=Path, metavar="DIR", help="index directory to update (FAISS)"
    )
    update.add_argument(
        "--catalog", type=Path, metavar="CSV", help="catalogue of products to add or replace"
    )
    update.add_argument(
        "--delete", nargs="+", default=[], metavar="ID", help="ids of products to remove"
    )
    update.add_argument(
        "--delete-file",
        type=Path,
        metavar="FILE",
        help="file of ids to remove, one per line (# comments)",
    )
    _add_model_options(update)
    milvus_cli.add_backend_options(update)


def build_parser() -> argparse.ArgumentParser:
    """The parser of `fashion-retrieval index`."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Build, update, inspect and verify FAISS indices of a product catalogue.",
        epilog="Run `fashion-retrieval index COMMAND --help` for a command's options and an "
        f"example.\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_build(commands)
    _add_update(commands)
    info = _subparser(commands, "info", "describe an index: its manifest, in words", INFO_EXAMPLE)
    info.add_argument("index", type=Path, nargs="?", metavar="INDEX_DIR")
    milvus_cli.add_backend_options(info)
    verify = _subparser(commands, "verify", "check an index's checksums and counts", VERIFY_EXAMPLE)
    verify.add_argument("index", type=Path, nargs="?", metavar="INDEX_DIR")
    milvus_cli.add_backend_options(verify)
    return parser


def _summary(report: BuildReport) -> str:
    manifest = report.manifest
    if manifest.product_weights is None:
        products = "no product vectors (rebuild with `index build` to add them); "
    else:
        products = "product vectors {:g},{:g}; ".format(*manifest.product_weights)
    return (
        f"published version {manifest.version}: {manifest.count} products, "
        f"{manifest.index_type} index, model {manifest.model_id[:12]}, {products}"
        f"{describe_work(report)} "
        f"({manifest.count / max(report.seconds, 1e-9):,.0f} products/s) -> {report.version_dir}"
    )


def _run_build(args: argparse.Namespace) -> int:
    if args.backend == "milvus":
        return milvus_cli.run_build(args)
    _require(args.out, "--out DIR")
    model = load_encoder(args.model, device=args.device, runtime=args.encoder)
    report = build_index(
        args.catalog,
        model,
        args.out,
        index_type=args.index_type,
        copy_images=args.copy_images,
        product_weights=args.product_weights,
        **encoding_options(args),
        workers=args.workers,
    )
    report_skipped(report.skipped)
    print(_summary(report))
    return 0


def read_id_file(path: Path) -> list[str]:
    """Ids from a file, one per line; blank lines and '#' comments are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise IndexerError(f"cannot read the delete file {path}: {exc.strerror or exc}") from exc
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def _run_update(args: argparse.Namespace) -> int:
    deletions = list(args.delete) + (read_id_file(args.delete_file) if args.delete_file else [])
    if args.backend == "milvus":
        return milvus_cli.run_update(args, deletions)
    _require(args.index, "--index DIR")
    model = (
        load_encoder(args.model, device=args.device, runtime=args.encoder)
        if args.catalog is not None
        else None
    )
    report = update_index(
        args.index,
        model,
        args.catalog,
        deletions,
        **encoding_options(args),
    )
    report_skipped(report.skipped)
    print(_summary(report))
    return 0


def _require(value: object, option: str) -> None:
    if value is None:
        raise IndexerError(f"the FAISS backend needs {option} (or give --backend milvus)")


def _run_info(args: argparse.Namespace) -> int:
    if args.backend == "milvus":
        return milvus_cli.run_info(args)
    _require(args.index, "INDEX_DIR")
    print(describe_index(args.index))
    return 0


def _run_verify(args: argparse.Namespace) -> int:
    if args.backend == "milvus":
        return milvus_cli.run_verify(args)
    _require(args.index, "INDEX_DIR")
    report = verify_index(args.index)
    if report.ok and report.manifest is not None:
        print(f"ok: {report.version_dir}: {report.manifest.count} products, every file checks out")
        return 0
    return report_problems(report.problems, args.index)


COMMANDS = {"build": _run_build, "update": _run_update, "info": _run_info, "verify": _run_verify}


def main(argv: Sequence[str] | None = None) -> int:
    """Run `fashion-retrieval index ARGV...`; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return int(exc.code or 0)
    try:
        return COMMANDS[args.command](args)
    except (IndexerError, ModelsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exits.ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exits.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
