"""Copy a seeded sample of the KAGL catalogue (every master category) into data/sample.

python scripts/make_sample.py ../shared/data/kagl data/sample --size 1000
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
from collections import defaultdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("source", type=Path, help="folder holding catalog.csv and images/")
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with (args.source / "catalog.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    rng = random.Random(args.seed)
    by_category: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_category[row["masterCategory"]].append(row)
    # At least a few of every master category, the rest in proportion.
    chosen: dict[str, dict[str, str]] = {}
    for members in by_category.values():
        for row in rng.sample(members, min(3, len(members))):
            chosen[row["id"]] = row
    rest = [row for row in rows if row["id"] not in chosen]
    for row in rng.sample(rest, args.size - len(chosen)):
        chosen[row["id"]] = row

    (args.out / "images").mkdir(parents=True, exist_ok=True)
    ordered = sorted(chosen.values(), key=lambda row: int(row["id"]))
    for row in ordered:
        shutil.copyfile(args.source / row["image"], args.out / row["image"])
    with (args.out / "catalog.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(ordered)
    print(f"wrote {len(ordered)} products to {args.out}")


if __name__ == "__main__":
    main()
