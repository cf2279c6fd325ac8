"""models.transforms: letterboxing on white and the (3, H, W) normalised tensor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from models import PreprocessConfig
from models.transforms import ImageTransform, letterbox

BLACK, WHITE = (0, 0, 0), (255, 255, 255)


@pytest.mark.parametrize(
    ("size", "content"),
    [
        ((60, 80), (24, 32)),  # the catalogue's 3:4 photos fill a 3:4 box exactly
        ((10, 10), (24, 24)),  # square: white bands above and below
        ((2000, 10), (24, 1)),  # extreme aspect: at least one row survives
        ((10, 2000), (1, 32)),
        ((1, 1), (24, 24)),
    ],
)
def test_letterbox_keeps_the_aspect_ratio_and_pads_with_white(size, content) -> None:
    boxed = letterbox(Image.new("RGB", size, BLACK), height=32, width=24)
    assert boxed.size == (24, 32) and boxed.mode == "RGB"
    pixels = np.asarray(boxed)
    dark = pixels.max(axis=2) < 128
    rows, cols = np.nonzero(dark)
    assert (cols.max() - cols.min() + 1, rows.max() - rows.min() + 1) == content
    # the content is centred, everything else is pure white
    assert abs((cols.min() + cols.max()) / 2 - 11.5) <= 0.5
    assert abs((rows.min() + rows.max()) / 2 - 15.5) <= 0.5
    assert (pixels[~dark] == 255).all()


def test_transform_gives_a_normalised_chw_tensor() -> None:
    config = PreprocessConfig(height=32, width=24, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    transform = ImageTransform(config)
    square = Image.new("RGB", (10, 10), BLACK)
    tensor = transform(square)
    assert tensor.shape == (3, 32, 24) and tensor.dtype == torch.float32
    # white padding and black content, through (x / 255 - mean) / std per channel
    torch.testing.assert_close(tensor[:, 0, 0], torch.tensor([1.0, 3.0, 1.0]))
    torch.testing.assert_close(tensor[:, 16, 12], torch.tensor([-1.0, -1.0, 0.0]))
    batch = transform.batch([square, Image.new("RGBA", (50, 5))])
    assert batch.shape == (2, 3, 32, 24)
    torch.testing.assert_close(batch[0], tensor)


def test_transform_accepts_any_mode() -> None:
    transform = ImageTransform(PreprocessConfig(height=16, width=16))
    for mode in ("L", "P", "CMYK", "I;16", "F", "1", "LA"):
        assert transform(Image.new(mode, (9, 4))).shape == (3, 16, 16), mode
