"""The Milvus side of `fashion-retrieval index ...`: options and commands.

indexer/cli.py adds these options to build, update, info and verify, and hands a
command to `run(args)` when `--backend milvus` is given. The token of a Milvus server
with authentication comes from FASHION_MILVUS__TOKEN, never from the command line.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from indexer.cli_common import (
    describe_work,
    encoding_options,
    report_problems,
    report_skipped,
)
from indexer.errors import IndexerError
from indexer.milvus.build import MilvusBuildReport, build_milvus_index
from indexer.milvus.connection import DEFAULT_COLLECTION, TOKEN_ENV, MilvusLocation
from indexer.milvus.info import describe_milvus_index
from indexer.milvus.schema import parse_index_params
from indexer.milvus.update import update_milvus_index
from indexer.milvus.verify import verify_milvus_index
from models import load_model

BACKENDS = ("faiss", "milvus")


def add_backend_options(parser: argparse.ArgumentParser, *, build: bool = False) -> None:
    group = parser.add_argument_group("backend (Milvus; see README 'Scaling out')")
    group.add_argument(
        "--backend",
        choices=BACKENDS,
        default="faiss",
        help="where the index lives: FAISS files in a directory (default) or Milvus",
    )
    group.add_argument(
        "--milvus-uri",
        metavar="URI",
        help="Milvus: a local file ending in .db (Milvus Lite) or http://host:19530; "
        f"a token, if the server needs one, from {TOKEN_ENV}",
    )
    group.add_argument(
        "--collection",
        metavar="NAME",
        default=DEFAULT_COLLECTION,
        help=f"Milvus: the collection alias that names the index (default: {DEFAULT_COLLECTION})",
    )
    if build:
        group.add_argument(
            "--milvus-index-params",
            type=_index_params,
            metavar="JSON",
            help='Milvus: the vector index, e.g. \'{"index_type": "HNSW", "params": {"M": 32, '
            '"efConstruction": 200}, "search_params": {"ef": 128}}\' or GPU_CAGRA on GPU '
            "nodes (default: FLAT up to 200k products, then IVF_FLAT)",
        )


def _index_params(text: str) -> dict[str, Any]:
    try:
        return parse_index_params(text)
    except IndexerError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def location_of(args: argparse.Namespace) -> MilvusLocation:
    if not args.milvus_uri:
        raise IndexerError(
            "--backend milvus needs --milvus-uri (a local file such as var/milvus.db, or "
            "http://host:19530)"
        )
    return MilvusLocation(args.milvus_uri, args.collection, token=os.environ.get(TOKEN_ENV))


def summary(report: MilvusBuildReport) -> str:
    manifest = report.manifest
    dropped = f"; dropped {', '.join(report.dropped)}" if report.dropped else ""
    return (
        f"published {report.collection} as {report.location.describe()}: "
        f"{manifest.count} products, {manifest.index_type} index, model "
        f"{manifest.model_id[:12]}, product vectors "
        "{:g},{:g}; ".format(*(manifest.product_weights or (0, 0)))
        + f"{describe_work(report)}{dropped}"
    )


def run_build(args: argparse.Namespace) -> int:
    if args.copy_images:
        raise IndexerError(
            "--copy-images is for FAISS index directories; a Milvus index references the "
            "photos under the catalogue's folder (serve them with FASHION_INDEX__IMAGES_DIR)"
        )
    location = location_of(args)
    model = load_model(args.model, device=args.device)
    report = build_milvus_index(
        args.catalog,
        model,
        location,
        index_params_override=args.milvus_index_params,
        product_weights=args.product_weights,
        **encoding_options(args),
    )
    report_skipped(report.skipped)
    print(summary(report))
    return 0


def run_update(args: argparse.Namespace, deletions: list[str]) -> int:
    location = location_of(args)
    model = load_model(args.model, device=args.device) if args.catalog is not None else None
    report = update_milvus_index(
        location,
        model,
        args.catalog,
        deletions,
        **encoding_options(args),
    )
    report_skipped(report.skipped)
    print(summary(report))
    return 0


def run_info(args: argparse.Namespace) -> int:
    print(describe_milvus_index(location_of(args)))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    location = location_of(args)
    report = verify_milvus_index(location)
    if report.ok and report.manifest is not None:
        print(
            f"ok: {report.collection} ({location.describe()}): {report.manifest.count} "
            "products, manifest, fields, indexes and sampled rows check out"
        )
        return 0
    return report_problems(report.problems, location.describe())


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "build": run_build,
    "info": run_info,
    "verify": run_verify,
}
