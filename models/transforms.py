"""Image preprocessing: the one place that turns a photo into model input."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from models.config import PreprocessConfig
from models.images import to_rgb


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
    """RGB PIL image -> (3, H, W) float32 tensor, letterboxed and normalised."""

    def __init__(self, config: PreprocessConfig) -> None:
        self.config = config
        self._mean = torch.tensor(config.mean, dtype=torch.float32).view(3, 1, 1)
        self._std = torch.tensor(config.std, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        boxed = letterbox(to_rgb(image), self.config.height, self.config.width)
        array = np.asarray(boxed, dtype=np.float32) / 255.0  # (H, W, 3)
        tensor = torch.from_numpy(array).permute(2, 0, 1)
        return (tensor - self._mean) / self._std

    def batch(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """(B, 3, H, W) float32."""
        return torch.stack([self(image) for image in images])
