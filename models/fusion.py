"""Product vectors: one embedding per product from its photo and its title.

A product vector is the L2-normalised weighted sum `w_image * image + w_text * text` of
the product's (L2-normalised) photo and title embeddings, as Marqo's fashion evaluation
builds its product documents. The indexer stores them as the `product` search target and
`evaluate --target product` scores them, both through `fuse`, so the two never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from models.errors import ConfigError

ProductWeights = tuple[float, float]  # (w_image, w_text)
DEFAULT_PRODUCT_WEIGHTS: ProductWeights = (0.9, 0.1)
_EPS = 1e-12  # a zero sum (opposite vectors, equal weights) stays zero instead of NaN


def check_weights(weights: Sequence[float]) -> ProductWeights:
    """(w_image, w_text) as floats; ConfigError unless two finite, non-negative numbers
    that are not both zero."""
    values = tuple(weights)
    if len(values) != 2:
        raise ConfigError(f"product weights are two numbers (image, text), got {values!r}")
    try:
        image, text = float(values[0]), float(values[1])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"product weights must be numbers, got {values!r}") from exc
    if not (math.isfinite(image) and math.isfinite(text)) or image < 0 or text < 0:
        raise ConfigError(f"product weights must be finite and >= 0, got {values!r}")
    if image == 0 and text == 0:
        raise ConfigError("product weights cannot both be 0")
    return image, text


def parse_weights(text: str) -> ProductWeights:
    """'0.9,0.1' -> (0.9, 0.1); ConfigError naming the bad text."""
    try:
        numbers = [float(part) for part in text.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) != 2:
        raise ConfigError(
            f"product weights {text!r} are not two numbers like '0.9,0.1' (image, text)"
        )
    return check_weights(numbers)


def fuse(
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    weights: Sequence[float] = DEFAULT_PRODUCT_WEIGHTS,
) -> np.ndarray:
    """Product vectors (N, D) float32, L2-normalised, from image_emb and text_emb (N, D).

    Row i is `w_image * image_emb[i] + w_text * text_emb[i]`, divided by its norm; the
    inputs should be L2-normalised (as the encoders return them) for the weights to mean
    what they say.
    """
    w_image, w_text = check_weights(weights)
    images = np.asarray(image_emb, dtype=np.float32)
    texts = np.asarray(text_emb, dtype=np.float32)
    if images.shape != texts.shape or images.ndim != 2:
        raise ValueError(
            f"image and text embeddings must both be (N, D), got {images.shape} and {texts.shape}"
        )
    fused = w_image * images + w_text * texts
    norms = np.linalg.norm(fused, axis=1, keepdims=True)
    return (fused / np.maximum(norms, _EPS)).astype(np.float32, copy=False)
