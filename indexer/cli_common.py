"""What the FAISS and Milvus index commands share: the encoding options handed to a build
or update, and the lines that report what it published."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from indexer.versions import PublishedCounts


def encoding_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of a build or update that say how the catalogue is encoded."""
    return {
        "batch_size": args.batch_size,
        "cache_dir": args.cache_dir,
        "max_skipped": args.max_skipped,
        "max_image_pixels": args.max_image_pixels,
        "progress": not args.quiet,
    }


def report_skipped(skipped: Sequence[str], first: int = 5) -> None:
    """Skipped rows on stderr: how many, and the first few with why."""
    if skipped:
        print(f"skipped {len(skipped)} rows:", file=sys.stderr)
        for line in skipped[:first]:
            print(f"  {line}", file=sys.stderr)
        if len(skipped) > first:
            print(f"  (and {len(skipped) - first} more)", file=sys.stderr)


def describe_work(report: PublishedCounts) -> str:
    """'[N added, N replaced, N deleted; ]encoded N images and N texts (the rest from the
    cache) in S s': the changes only when something was replaced or deleted."""
    changes = (
        f"{report.added} added, {report.replaced} replaced, {report.deleted} deleted; "
        if report.replaced or report.deleted
        else ""
    )
    return (
        f"{changes}encoded {report.encoded_images} images and {report.encoded_texts} texts "
        f"(the rest from the cache) in {report.seconds:.1f} s"
    )


def report_problems(problems: Sequence[str], where: object) -> int:
    """A failed verify on stderr: each problem, then how many at `where`; exit code 1."""
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"{where}: {len(problems)} problem(s) found", file=sys.stderr)
    return 1
