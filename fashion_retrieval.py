"""The `fashion-retrieval` console script: dispatches each subcommand to its package's CLI.

This is the one module that may reach `app` and `training`; it only routes.
"""

from __future__ import annotations

import importlib
import logging
import sys

# subcommand -> (module whose main(argv) runs it, whether it takes the subcommand name)
COMMANDS = {
    "train": ("training.cli", True, "train a model on a catalogue and write an artifact"),
    "evaluate": ("training.cli", True, "score a model artifact on a catalogue split"),
    "index": ("indexer.cli", False, "build, update, inspect and verify FAISS indices"),
    "serve": ("app.cli", False, "run the search service and web UI"),
    "export-onnx": ("models.cli", False, "export a model's towers for the ONNX Runtime encoder"),
    "average": ("training.average_cli", False, "average fine-tuned models' weights (a model soup)"),
}

USAGE = (
    "usage: fashion-retrieval {train,evaluate,index,serve,export-onnx,average} ...\n\ncommands:\n"
    + "\n".join(f"  {name:<11} {help_text}" for name, (_, _, help_text) in COMMANDS.items())
    + """

example:
  fashion-retrieval train --catalog data/sample/catalog.csv --config tiny --out runs/tiny
  fashion-retrieval index build --catalog data/sample/catalog.csv --out var/index
  fashion-retrieval serve --index var/index

Run `fashion-retrieval COMMAND --help` for a command's options and an example."""
)


FAISS_MISSING = (
    "fashion-retrieval: error: FAISS is not installed; install the project with exactly one "
    'of its extras: pip install "fashion-retrieval[cpu]" or "fashion-retrieval[gpu]"'
)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(f"fashion-retrieval: unknown command {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    module_name, keep_name, _ = COMMANDS[argv[0]]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != "faiss":
            raise
        print(FAISS_MISSING, file=sys.stderr)
        return 1
    return int(module.main(argv if keep_name else argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
