"""Image preprocessing: the one place that turns a photo into model input.

`ImageTransform.pixels` is numpy only, so it can run in the service's decoding threads
and the indexer's decoding processes; the encoders take its (3, H, W) arrays as they are.
Only the tensor methods training uses (`__call__`, `batch`) import PyTorch, when called:
the CPU service never imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from models.config import PreprocessConfig
from models.images import open_image, to_rgb

if TYPE_CHECKING:
    import torch

# A photo as the encoders accept it; an ndarray is a (3, H, W) ImageTransform.pixels output.
ImageInput = str | Path | bytes | Image.Image | np.ndarray


def letterbox(image: Image.Image, height: int, width: int) -> Image.Image:
    """Resize to fit height x width keeping the aspect ratio, padding with white.

    Catalogue photos are product shots on white, so padding with white keeps an
    upload of another shape looking like them instead of stretching it.
    """
    src_w, src_h = image.size
    scale = min(width / src_w, height / src_h)
    new_w = max(1, round(src_w * scale))
    new_h = max(1, round(src_h * scale))
    resized = image.resize((new_w, new_h), Image.Resampling.BICUBIC, reducing_gap=3.0)
    if (new_w, new_h) == (width, height):
        return resized
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    canvas.paste(resized, ((width - new_w) // 2, (height - new_h) // 2))
    return canvas


class ImageTransform:
    """RGB PIL image -> (3, H, W) float32 array (or tensor), letterboxed and normalised."""

    def __init__(self, config: PreprocessConfig) -> None:
        self.config = config
        self._mean = np.asarray(config.mean, dtype=np.float32).reshape(3, 1, 1)
        self._std = np.asarray(config.std, dtype=np.float32).reshape(3, 1, 1)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """(3, H, W) float32 tensor, for training."""
        import torch

        return torch.from_numpy(self.pixels(to_rgb(image)))

    def pixels(self, image: Image.Image) -> np.ndarray:
        """An upright RGB image (models.images.open_image's) -> (3, H, W) float32."""
        boxed = letterbox(image, self.config.height, self.config.width)
        array = np.asarray(boxed, dtype=np.float32).transpose(2, 0, 1) / np.float32(255.0)
        return (array - self._mean) / self._std

    def prepare(self, image: ImageInput) -> np.ndarray:
        """Any accepted photo -> (3, H, W) float32, decoding it once (a (3, H, W) array is
        taken as already prepared). Raises ImageDecodeError for an undecodable one."""
        if isinstance(image, np.ndarray):
            return image
        return self.pixels(open_image(image))

    def prepare_batch(self, images: Sequence[ImageInput]) -> np.ndarray:
        """(B, 3, H, W) float32."""
        if not images:
            height, width = self.config.height, self.config.width
            return np.zeros((0, 3, height, width), dtype=np.float32)
        return np.stack([self.prepare(image) for image in images])

    def batch(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """(B, 3, H, W) float32 tensor, for training."""
        import torch

        return torch.stack([self(image) for image in images])
