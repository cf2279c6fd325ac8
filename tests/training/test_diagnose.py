"""The attribute diagnosis: probes tell encoded attributes from noise; agreement counts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from models import Product
from training.diagnose import (
    attribute_probe,
    attribute_value,
    majority_accuracy,
    median_pool_size,
    retrieved_agreement,
)

REPO = Path(__file__).resolve().parents[2]


def _labelled(n: int, rng: np.random.Generator, *, encoded: bool) -> tuple[np.ndarray, list[str]]:
    labels = rng.integers(0, 4, n)
    x = rng.normal(size=(n, 16))
    if encoded:
        x[:, :4] += 6 * np.eye(4)[labels]
    return x.astype(np.float32), [f"c{label}" for label in labels]


def test_probe_reads_an_encoded_attribute_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    train_x, train_y = _labelled(2000, rng, encoded=True)
    test_x, test_y = _labelled(500, rng, encoded=True)
    assert attribute_probe(train_x, train_y, test_x, test_y) > 0.95
    noise_x, noise_y = _labelled(2000, rng, encoded=False)
    noise_test_x, noise_test_y = _labelled(500, rng, encoded=False)
    assert attribute_probe(noise_x, noise_y, noise_test_x, noise_test_y) < 0.4


def test_probe_counts_unseen_test_labels_as_misses() -> None:
    x = np.eye(2, dtype=np.float32).repeat(50, axis=0)
    assert attribute_probe(x, ["a"] * 50 + ["b"] * 50, x[:2], ["a", "zzz"]) == 0.5


def test_majority_and_agreement() -> None:
    assert majority_accuracy(["a", "a", "b"], ["a", "b", "b", "b"]) == 0.25
    scores = np.array([[0.9, 0.1, 0.8], [0.0, 1.0, 0.5]])
    # query 0's top 2 are items 0 and 2; query 1's are items 1 and 2
    assert retrieved_agreement(scores, ["x", "y"], ["x", "y", "y"], k=2) == 0.75


def test_brand_is_the_titles_first_word() -> None:
    product = Product(
        id="1", image="a.jpg", text="Puma Men Black Jacket", attributes={"gender": "Men"}
    )
    assert attribute_value(product, "brand") == "puma"
    assert attribute_value(product, "gender") == "Men"
    assert attribute_value(product, "season") == ""


def test_script_prints_a_row_per_attribute(sample_catalog: Path, tiny_model_dir: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "scripts/diagnose_model.py",
            "--model",
            str(tiny_model_dir),
            "--catalog",
            str(sample_catalog),
            "--train-sample",
            "200",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("attribute"))
    assert [line.split()[0] for line in lines[header + 1 : header + 5]] == [
        "gender",
        "articleType",
        "baseColour",
        "brand",
    ]
    pools = [line.split(":") for line in lines if line.startswith("  gender")]
    assert [name.strip() for name, _ in pools] == [
        "gender",
        "gender + articleType",
        "gender + articleType + baseColour",
        "gender + articleType + baseColour + brand",
    ]
    sizes = [int(size) for _, size in pools]
    assert sizes == sorted(sizes, reverse=True)  # each attribute narrows the field


def test_median_pool_size_counts_products_sharing_every_value() -> None:
    def product(pid: str, text: str, gender: str) -> Product:
        return Product(id=pid, image="x.jpg", text=text, attributes={"gender": gender})

    catalogue = [
        product("1", "Puma A", "Men"),
        product("2", "Puma B", "Men"),
        product("3", "Nike C", "Men"),
        product("4", "Puma D", "Women"),
    ]
    assert median_pool_size(catalogue[:1], catalogue, ["gender"]) == 3
    assert median_pool_size(catalogue[:1], catalogue, ["gender", "brand"]) == 2
    assert median_pool_size([catalogue[0], catalogue[3]], catalogue, ["gender"]) == 2
