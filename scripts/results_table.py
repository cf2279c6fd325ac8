"""Print the README's results tables from the JSON files `evaluate --json` wrote.

    python scripts/results_table.py results

The first table is the seed and catalog protocols' title retrieval; the second the
catalogue-scale tasks of Marqo's KAGL protocol (title -> photo and the category
tasks), for each search target a model was scored on, beside Marqo-FashionSigLIP's
leaderboard figures (theirs, not measured here).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# The seed's published numbers (its own Indian-wear data, gallery of about 1,230 products).
SEED_PUBLISHED = "| seed's Deep CMPL, published (other data) | 31.3 | 68.2 | 79.5 | 0.24% | - | 29.8 | 67.6 | 80.3 | 0.24% | - | - | - | - |"

# Marqo-FashionSigLIP on KAGL (Marqo's leaderboard; its product documents weight photo
# and title 0.9 / 0.1): title R@1, R@10, MRR@10, then P@1 / P@10 per category task.
FASHION_SIGLIP = (
    "| Marqo-FashionSigLIP (their leaderboard, photo + title 0.9/0.1) | 0.179 | 0.489 | 0.293 "
    "| 0.571 | 0.686 | 0.711 | 0.687 | 0.704 | 0.629 | 0.587 | 0.502 |"
)
CATEGORY_FIELDS = ("masterCategory", "subCategory", "articleType", "baseColour")

ROWS = [
    (
        "lite0-minilm-colour-b256-lr2-flip",
        "Deep CMPL + shopper-query fields, colour-weighted, 7 epochs, batches to 256, photo and "
        "mirror image averaged (default), ranked as the service ranks (hubness-corrected, "
        "photo uploads too)",
    ),
    (
        "lite0-minilm-colour-b256-lr2-scales",
        "Deep CMPL + shopper-query fields, colour-weighted, 7 epochs, batches to 256, photo and "
        "mirror image at 128x96 and 160x120 averaged (image_scales, not the default), ranked "
        "as the service ranks (hubness-corrected, photo uploads too)",
    ),
    (
        "lite0-minilm-colour-b256-lr2-hubness",
        "Deep CMPL + shopper-query fields, colour-weighted, 7 epochs, batches to 256 (session 8), "
        "ranked as the service ranked (text queries hubness-corrected)",
    ),
    (
        "lite0-minilm-colour-b256-lr2",
        "Deep CMPL + shopper-query fields, colour-weighted, 7 epochs, batches to 256 (session 8), "
        "cosine",
    ),
    (
        "lite0-minilm-colour-b256",
        "Deep CMPL + shopper-query fields, colour-weighted, 6 epochs, batches to 256 (session 7)",
    ),
    (
        "lite0-minilm-colour-b128",
        "Deep CMPL + shopper-query fields, colour-weighted, 5 epochs, batches of 128 (session 7)",
    ),
    (
        "lite0-minilm-colour-128",
        "Deep CMPL + shopper-query fields, colour-weighted, 4 epochs (session 6)",
    ),
    (
        "lite0-minilm-colour",
        "Deep CMPL + shopper-query fields, colour-weighted, 2 epochs (session 5)",
    ),
    ("lite0-minilm-fields", "Deep CMPL + shopper-query fields, whole Lite0 (session 4)"),
    ("lite0-minilm", "Deep CMPL: EfficientNet-Lite0 + MiniLM, CMPM + CMPC (session 2)"),
    ("seed-mobilenet-bilstm", "Deep CMPL: MobileNetV1 + Bi-LSTM, CMPM (seed config)"),
    ("seed-efficientnet-bilstm", "Deep CMPL: EfficientNet-B0 + Bi-LSTM, CMPM (seed config)"),
    ("seed-siamese", "Siamese network, contrastive loss"),
    ("seed-corrnet", "Correlational network"),
]


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def row(results: Path, name: str, label: str) -> str | None:
    seed_file = results / f"{name}-seed-test.json"
    catalog_file = results / f"{name}-catalog-test.json"
    if not seed_file.is_file():
        return None
    seed = json.loads(seed_file.read_text())["results"]
    cells = [label]
    for direction in ("text_to_image", "image_to_text"):
        m = seed[direction]
        cells += [
            _pct(m["R@1"]),
            _pct(m["R@5"]),
            _pct(m["R@10"]),
            f"{m['median_rank_pct']:.2f}%",
            _pct(m["mAP"]),
        ]
    if catalog_file.is_file():
        c = json.loads(catalog_file.read_text())["results"]["text_to_image"]
        cells += [f"{c['R@1']:.3f}", f"{c['R@10']:.3f}", f"{c['MRR@10']:.3f}"]
    else:
        cells += ["-", "-", "-"]
    return "| " + " | ".join(cells) + " |"


def task_rows(results: Path, name: str, label: str) -> list[str]:
    """One row per target the catalog-protocol JSON holds: title task and category tasks."""
    path = results / f"{name}-catalog-test.json"
    if not path.is_file():
        return []
    report = json.loads(path.read_text())
    rows = []
    for target, prefix in (("photos", ""), ("product vectors", "product_")):
        if f"{prefix}categories" not in report:
            continue
        title = report[f"{prefix}results"]["text_to_image"]
        cells = [f"{label}, {target}", *(f"{title[m]:.3f}" for m in ("R@1", "R@10", "MRR@10"))]
        categories = report[f"{prefix}categories"]
        for field in CATEGORY_FIELDS:
            m = categories.get(field)
            cells += [f"{m['P@1']:.3f}", f"{m['P@10']:.3f}"] if m else ["-", "-"]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", type=Path)
    args = parser.parse_args()
    print(
        "| model | t->i R@1 | R@5 | R@10 | med. rank | mAP | i->t R@1 | R@5 | R@10 | med. rank | mAP "
        "| catalog t->i R@1 | R@10 | MRR@10 |"
    )
    print("|---" * 14 + "|")
    print(SEED_PUBLISHED)
    for name, label in ROWS:
        line = row(args.results, name, label)
        if line:
            print(line)
    print()
    print(
        "| model, searched | title R@1 | R@10 | MRR@10 | category P@1 | P@10 "
        "| sub-category P@1 | P@10 | fine category P@1 | P@10 | colour P@1 | P@10 |"
    )
    print("|---" * 12 + "|")
    print(FASHION_SIGLIP)
    for name, label in ROWS:
        for line in task_rows(args.results, name, label):
            print(line)


if __name__ == "__main__":
    main()
