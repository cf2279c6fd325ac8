"""`fashion-retrieval serve`: run the search service and the web UI."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from app.errors import ServiceError
from app.loading import prepare
from app.main import create_app
from app.server import run_server
from app.settings import ENV_PREFIX, Settings
from indexer.errors import IndexerError
from models import exits
from models.artifact import DEVICES
from models.errors import ModelsError
from models.exits import exit_codes_help

logger = logging.getLogger(__name__)

EXIT_CODES = exit_codes_help("a bad model or index, a port already taken")

EXAMPLES = """\
examples:
  fashion-retrieval serve
      serve the bundled sample catalogue (its index is built on first start)
      on http://127.0.0.1:8000
  fashion-retrieval serve --index var/index --model runs/lite0/best --host 0.0.0.0
  fashion-retrieval serve --backend milvus --milvus-uri http://milvus:19530 \
      --collection fashion_products
      serve an index built with `index build --backend milvus` (README: Scaling out)

Every option is also an environment variable (the option wins), e.g.
FASHION_INDEX__PATH, FASHION_MODEL__PATH, FASHION_SERVER__HOST, FASHION_SERVER__PORT,
FASHION_INDEX__BACKEND, FASHION_INDEX__MILVUS_URI, FASHION_INDEX__COLLECTION (a Milvus
token: FASHION_MILVUS__TOKEN);
the admin token for POST /v1/admin/reload is FASHION_ADMIN__TOKEN (no token: reload off).
A bad option or setting is a usage error (2).

{exit_codes}
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fashion-retrieval serve",
        description="Run the search service (REST API under /v1, web UI at /).",
        epilog=EXAMPLES.format(exit_codes=EXIT_CODES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--index",
        type=Path,
        metavar="INDEX_DIR",
        help="index directory from `fashion-retrieval index build` "
        "(default: the bundled sample catalogue's index, built if missing)",
    )
    parser.add_argument(
        "--model",
        type=Path,
        metavar="M",
        help="model artifact directory (default: the bundled default model)",
    )
    parser.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: 8000)")
    parser.add_argument(
        "--device",
        choices=DEVICES,
        help="auto (GPU when there is one), cpu or cuda, for model and index (default: auto)",
    )
    parser.add_argument(
        "--backend", choices=("faiss", "milvus"), help="where the index lives (default: faiss)"
    )
    parser.add_argument(
        "--milvus-uri", metavar="URI", help="Milvus: a local .db file or http://host:19530"
    )
    parser.add_argument(
        "--collection", metavar="NAME", help="Milvus: the collection alias (fashion_products)"
    )
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="load the model and the index (building the index first when it is missing "
        "and that is allowed), then exit without serving: a one-shot init job that builds "
        "the index with exactly the settings the service reads",
    )
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Environment first, then the options given on the command line on top."""
    overrides: dict[str, dict[str, object]] = {"model": {}, "index": {}, "server": {}}
    if args.index is not None:
        overrides["index"]["path"] = args.index
    if args.model is not None:
        overrides["model"]["path"] = args.model
    if args.device is not None:
        overrides["model"]["device"] = args.device
        overrides["index"]["device"] = args.device
    for option, field in (
        ("backend", "backend"),
        ("milvus_uri", "milvus_uri"),
        ("collection", "collection"),
    ):
        if getattr(args, option) is not None:
            overrides["index"][field] = getattr(args, option)
    if args.host is not None:
        overrides["server"]["host"] = args.host
    if args.port is not None:
        overrides["server"]["port"] = args.port
    # Partial groups: pydantic-settings merges them with the environment's values.
    groups = {group: values for group, values in overrides.items() if values}
    return Settings(**groups)  # type: ignore[arg-type]


def _one_line(exc: ValidationError) -> str:
    """A settings error as one line: each bad value's variable name and what is wrong."""
    return "; ".join(
        f"{ENV_PREFIX}{'__'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
        for error in exc.errors()
    )


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (without the word `serve`), load model and index, serve until stopped;
    returns the exit code (EXIT_CODES)."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        print(f"error: invalid setting: {_one_line(exc)}", file=sys.stderr)
        return exits.USAGE
    try:
        return _serve(settings, prepare_only=args.prepare_only)
    except (ModelsError, IndexerError, ServiceError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exits.ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exits.INTERRUPTED


def _serve(settings: Settings, *, prepare_only: bool = False) -> int:
    serving = prepare(settings)
    if prepare_only:
        print(
            f"Ready: {len(serving.index)} products with model {serving.model.model_id}",
            flush=True,
        )
        serving.index.close()
        return exits.OK
    # Reload reopens the index actually served (the sample index when none was given).
    if settings.index.backend == "faiss":
        settings.index.path = serving.index_path  # type: ignore[assignment]
    app = create_app(settings, serving=serving)
    server = settings.server
    print(
        f"Serving {len(serving.index)} products with model {serving.model.model_id} "
        f"on http://{server.host}:{server.port}  (Ctrl+C to stop)",
        flush=True,
    )
    try:
        started = run_server(app, server)
    finally:
        serving.index.close()
    if not started:
        print(
            f"error: the server could not start on {server.host}:{server.port} "
            "(uvicorn logged why above: the port is taken, say)",
            file=sys.stderr,
        )
        return exits.ERROR
    return exits.OK
