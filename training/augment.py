"""Label-preserving photo augmentation for training.

A shopper's upload is framed, shaped and sized unlike the catalogue's 60x80 product
shots: the product fills more or less of the frame, the photo is square or wider, it
is scaled down from megapixels rather than up from a thumbnail. Each of these is
drawn here, then the photo goes through the serving transform (letterbox on white),
so training sees what serving will. No colour jitter: colour is in the text.
"""

from __future__ import annotations

import math
import random

from PIL import Image, ImageOps

from models.images import to_rgb

WHITE = (255, 255, 255)
_FILTERS = (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.LANCZOS)


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _zoom(image: Image.Image, factor: float, rng: random.Random) -> Image.Image:
    """factor > 1 crops in (the product fills more), < 1 pads with white (less)."""
    width, height = image.size
    if factor >= 1.0:
        crop_w, crop_h = max(1, round(width / factor)), max(1, round(height / factor))
        left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
        return image.crop((left, top, left + crop_w, top + crop_h))
    canvas_w, canvas_h = round(width / factor), round(height / factor)
    canvas = Image.new("RGB", (canvas_w, canvas_h), WHITE)
    canvas.paste(image, (rng.randint(0, canvas_w - width), rng.randint(0, canvas_h - height)))
    return canvas


def _fit(image: Image.Image, height: int, width: int, rng: random.Random) -> Image.Image:
    """Resize to fit height x width (aspect kept) with a random filter; the serving
    letterbox then only pads."""
    scale = min(width / image.width, height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, rng.choice(_FILTERS))


def augment(
    image: Image.Image,
    height: int,
    width: int,
    rng: random.Random,
    *,
    flip: bool = True,
    zoom: tuple[float, float] = (0.8, 1.2),
    stretch: tuple[float, float] = (0.85, 1.18),
) -> Image.Image:
    """One random label-preserving variant of `image`, sized to fit height x width."""
    image = to_rgb(image)
    aspect = _log_uniform(rng, *stretch)
    if abs(aspect - 1.0) > 0.01:
        image = image.resize((max(1, round(image.width * aspect)), image.height))
    image = _zoom(image, _log_uniform(rng, *zoom), rng)
    if flip and rng.random() < 0.5:
        image = ImageOps.mirror(image)
    return _fit(image, height, width, rng)
