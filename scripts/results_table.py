"""Print the README's results table from the JSON files `evaluate --json` wrote.

    python scripts/results_table.py results
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# The seed's published numbers (its own Indian-wear data, gallery of about 1,230 products).
SEED_PUBLISHED = "| seed's Deep CMPL, published (other data) | 31.3 | 68.2 | 79.5 | 0.24% | - | 29.8 | 67.6 | 80.3 | 0.24% | - | - | - | - |"

ROWS = [
    ("lite0-minilm", "Deep CMPL: EfficientNet-Lite0 + MiniLM, CMPM + CMPC (default)"),
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
        cells += [_pct(m["R@1"]), _pct(m["R@5"]), _pct(m["R@10"]), f"{m['median_rank_pct']:.2f}%", _pct(m["mAP"])]
    if catalog_file.is_file():
        c = json.loads(catalog_file.read_text())["results"]["text_to_image"]
        cells += [f"{c['R@1']:.3f}", f"{c['R@10']:.3f}", f"{c['MRR@10']:.3f}"]
    else:
        cells += ["-", "-", "-"]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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


if __name__ == "__main__":
    main()
