"""models.fusion: product vectors against a float64 reference."""

from __future__ import annotations

import numpy as np
import pytest

from models import DEFAULT_PRODUCT_WEIGHTS, fuse
from models.errors import ConfigError
from models.fusion import check_weights, parse_weights


def _unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("weights", [DEFAULT_PRODUCT_WEIGHTS, (0.5, 0.5), (1.0, 0.0), (0.0, 2.0)])
def test_fuse_is_the_normalised_weighted_sum(weights: tuple[float, float]) -> None:
    images, texts = _unit_rows(7, 16, 0), _unit_rows(7, 16, 1)
    fused = fuse(images, texts, weights)
    expected = weights[0] * images.astype(np.float64) + weights[1] * texts.astype(np.float64)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert fused.dtype == np.float32 and fused.shape == (7, 16)
    np.testing.assert_allclose(fused, expected, atol=1e-6)


def test_scaling_the_weights_changes_nothing() -> None:
    images, texts = _unit_rows(3, 8, 2), _unit_rows(3, 8, 3)
    np.testing.assert_allclose(
        fuse(images, texts, (0.9, 0.1)), fuse(images, texts, (9, 1)), atol=1e-6
    )


def test_opposite_vectors_fuse_to_zero_not_nan() -> None:
    image = _unit_rows(1, 4, 4)
    fused = fuse(image, -image, (1.0, 1.0))
    assert np.all(np.isfinite(fused)) and not fused.any()


def test_bad_shapes_and_weights_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        fuse(_unit_rows(2, 4, 0), _unit_rows(3, 4, 0))
    for bad in [(0, 0), (-0.1, 1.0), (float("nan"), 1.0), (1.0,), ("a", 1)]:
        with pytest.raises(ConfigError):
            check_weights(bad)  # type: ignore[arg-type]


def test_parse_weights() -> None:
    assert parse_weights("0.9,0.1") == (0.9, 0.1)
    assert parse_weights(" 1 , 0 ") == (1.0, 0.0)
    for bad in ["0.9", "0.9;0.1", "a,b", "0.9,0.1,0", ""]:
        with pytest.raises(ConfigError, match="product weights"):
            parse_weights(bad)
