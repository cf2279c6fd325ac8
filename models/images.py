"""Turn any image the world hands us into an RGB picture the encoders accept.

Uploads come in every mode (RGBA, palette, CMYK, 16-bit grayscale, ...), with EXIF
rotation, and sometimes truncated or huge; catalogue photos are 60x80 JPEGs.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from models.errors import ImageDecodeError

# Pillow raises DecompressionBombError above twice this; keep its default guard explicit.
MAX_IMAGE_PIXELS = 89_478_485
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


def to_rgb(image: Image.Image) -> Image.Image:
    """Return an upright RGB copy of `image`; transparency is composited onto white."""
    image = ImageOps.exif_transpose(image) or image
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grayscale: scale the real range down to 8 bits instead of clipping.
        array = np.asarray(image, dtype=np.float64)
        top = array.max() or 1.0
        image = Image.fromarray((array * (255.0 / top)).astype(np.uint8), mode="L")
    elif image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        scaled = (array - low) / ((high - low) or 1.0) * 255.0
        image = Image.fromarray(scaled.astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        # Catalogue photos sit on white; a transparent upload should look the same.
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def open_image(source: str | Path | bytes | Image.Image) -> Image.Image:
    """Decode a path, raw bytes or a PIL image into an upright RGB image.

    Raises ImageDecodeError for anything that is not a complete, decodable image
    (including decompression bombs), naming the source.
    """
    if isinstance(source, Image.Image):
        return to_rgb(source)
    name = "uploaded bytes" if isinstance(source, (bytes, bytearray)) else str(source)
    try:
        if isinstance(source, (bytes, bytearray)):
            image = Image.open(io.BytesIO(source))
        else:
            image = Image.open(source)
        with image:
            image.seek(0)  # first frame of a GIF / animated WebP
            image.load()
            return to_rgb(image)
    except FileNotFoundError as exc:
        raise ImageDecodeError(f"image file not found: {name}") from exc
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(
            f"image {name} is too large to decode safely (more than {MAX_IMAGE_PIXELS} pixels)"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"cannot decode image {name}: {exc}") from exc
