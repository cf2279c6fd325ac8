"""training.augment: label-preserving variants, sized for the serving letterbox."""

from __future__ import annotations

import random

import numpy as np
from PIL import Image

from training.augment import augment


def _product_shot(width: int = 60, height: int = 80) -> Image.Image:
    """A red product on white, like the catalogue's photos."""
    image = Image.new("RGB", (width, height), (255, 255, 255))
    image.paste((200, 0, 0), (width // 4, height // 4, 3 * width // 4, 3 * height // 4))
    return image


def test_variants_fit_the_model_input_and_keep_white_background_and_colour() -> None:
    rng = random.Random(0)
    for source in (_product_shot(), _product_shot(224, 224), _product_shot(300, 225)):
        for _ in range(30):
            out = augment(source, 128, 96, rng)
            assert out.mode == "RGB"
            assert out.width <= 96 and out.height <= 128
            assert out.width == 96 or out.height == 128  # fits one side exactly
            pixels = np.asarray(out).reshape(-1, 3).astype(int)
            reddish = (pixels[:, 0] > 150) & (pixels[:, 1] < 60) & (pixels[:, 2] < 60)
            assert reddish.mean() > 0.05  # the product is still there, still red
            assert np.asarray(out)[0, 0].min() > 200  # a corner stays background


def test_variants_are_seeded_and_differ() -> None:
    first = [augment(_product_shot(), 128, 96, random.Random(s)).tobytes() for s in range(6)]
    again = [augment(_product_shot(), 128, 96, random.Random(s)).tobytes() for s in range(6)]
    assert first == again
    assert len(set(first)) == 6


def test_without_flips_a_left_mark_never_moves_right() -> None:
    source = _product_shot()
    source.paste((0, 0, 200), (2, 30, 10, 50))  # a blue mark at the left edge
    rng = random.Random(1)
    for _ in range(30):
        out = np.asarray(augment(source, 128, 96, rng, flip=False)).astype(int)
        blue = np.argwhere((out[:, :, 2] > 150) & (out[:, :, 0] < 60))
        if len(blue):
            assert blue[:, 1].mean() < out.shape[1] / 2
