"""Turn any image the world hands us into an RGB picture the encoders accept.

Uploads come in every mode (RGBA, palette, CMYK, 16-bit grayscale, ...), with EXIF
rotation, and sometimes truncated, hostile or huge; catalogue photos are 60x80 JPEGs.
Only the formats a shop sees are decoded (JPEG, PNG, WebP, GIF): every other Pillow
plugin is never even asked to parse the bytes. The pixel count is checked from the
header before any pixel is decoded, and large photos are decoded at a reduced size.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from models.errors import ImageDecodeError

# Pillow's format plugins tried on an upload. The JPEG plugin also opens MPO, the
# multi-picture JPEG that many cameras and phones write.
SHOP_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
FORMATS_IN_WORDS = "JPEG, PNG, WebP or GIF"
# Real product photos are at most a few tens of megapixels (a 6000x4000 phone photo is 24).
DEFAULT_MAX_PIXELS = 40_000_000
# Photos are decoded no larger than needed to cover this box (width, height) by an integer
# factor; models take 128x96 inputs or less, so this leaves ample room for resampling.
DECODE_BOX = (512, 512)

# Pillow's own guard stays on, above any sane budget of ours: it raises at twice this.
# Its warning below that is noise: our budget, checked from the header, is what refuses.
Image.MAX_IMAGE_PIXELS = 89_478_485
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

# Leading bytes of formats people try to upload, to name them in the refusal.
_SIGNATURES = (
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"qoif", "QOI"),
    (b"DDS ", "DDS"),
    (b"BLP", "BLP"),
    (b"\x00\x00\x01\x00", "ICO"),
)


class ImageTooLargeError(ImageDecodeError):
    """The image's header announces more pixels than the budget allows."""


def _error(cls: type[ImageDecodeError], message: str, reason: str) -> ImageDecodeError:
    """`cls(message)`, whose message names the source; `.reason` says the problem
    without it (the service answers with that: the client knows which file it sent)."""
    error = cls(message)
    error.reason = reason  # type: ignore[attr-defined]
    return error


def to_rgb(image: Image.Image) -> Image.Image:
    """Return an upright RGB copy of `image`; transparency is composited onto white."""
    image = _upright(image)
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


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a damaged EXIF block is ignored, not fatal (the
    pixels are fine, only the metadata is broken)."""
    try:
        upright = ImageOps.exif_transpose(image) or image
    except Exception:  # noqa: BLE001 - any parser error in metadata we can do without
        upright = image
    return upright


def _format_name(data: bytes) -> str | None:
    """The name of a well-known format that we refuse, from its leading bytes."""
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    if data[4:8] == b"ftyp":
        return "HEIC/AVIF" if re.match(rb"(heic|heix|mif1|msf1|avif|avis)", data[8:12]) else "MP4"
    if data.lstrip()[:5].lower() in (b"<?xml", b"<svg "):
        return "SVG"
    return None


def _unsupported(data: bytes, name: str) -> ImageDecodeError:
    known = _format_name(data)
    what = f"{known}, which is not accepted" if known else "not an image format we accept"
    reason = f"it is {what}; use {FORMATS_IN_WORDS}"
    return _error(ImageDecodeError, f"cannot decode image {name}: {reason}", reason)


def _shrink_factor(size: tuple[int, int], box: tuple[int, int]) -> int:
    """The largest integer factor that keeps both sides at least as large as `box`."""
    return max(1, min(size[0] // box[0], size[1] // box[1]))


def _decode(image: Image.Image, *, max_pixels: int, box: tuple[int, int] | None) -> Image.Image:
    """Check the header's size against the budget, then decode the first frame."""
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"it is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels); "
            f"images of at most {max_pixels / 1e6:g} megapixels are accepted"
        )
    image.seek(0)  # first frame of a GIF / animated PNG or WebP
    if box is not None and image.format in ("JPEG", "MPO"):
        image.draft(None, box)  # libjpeg decodes at 1/2, 1/4 or 1/8 scale directly
    image.load()
    if box is not None:
        factor = _shrink_factor(image.size, box)
        if factor > 1 and image.mode not in ("P", "PA", "1", "I;16", "I;16B", "I;16L"):
            return image.reduce(factor)  # a box filter: cheap, and nothing large downstream
    return image


def open_image(
    source: str | Path | bytes | bytearray | Image.Image,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    decode_box: tuple[int, int] | None = DECODE_BOX,
) -> Image.Image:
    """Decode a path, raw bytes or a PIL image into an upright RGB image.

    Only JPEG, PNG, WebP and GIF (first frame) are decoded. An image whose header
    announces more than `max_pixels` is refused before any pixel is decoded
    (ImageTooLargeError); a large one is decoded at the smallest integer reduction that
    still covers `decode_box` (None: full size). Raises ImageDecodeError, naming the
    source, for anything else that goes wrong, whatever the decoder raised.
    """
    if isinstance(source, Image.Image):
        try:
            return to_rgb(source)
        except Exception as exc:  # a lazily loaded image can still fail
            raise ImageDecodeError(f"cannot decode the image: {exc}") from exc
    is_bytes = isinstance(source, (bytes, bytearray))
    name = "uploaded bytes" if is_bytes else str(source)
    try:
        data = (
            bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
        )
    except FileNotFoundError as exc:
        raise _error(ImageDecodeError, f"image file not found: {name}", "no such file") from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise _error(ImageDecodeError, f"cannot read image {name}: {reason}", reason) from exc
    try:
        image = Image.open(io.BytesIO(data), formats=SHOP_FORMATS)
    except Image.DecompressionBombError as exc:
        reason = f"images of at most {max_pixels / 1e6:g} megapixels are accepted"
        message = f"image {name} is too large to decode safely: {reason}"
        raise _error(ImageTooLargeError, message, reason) from exc
    except Exception as exc:  # UnidentifiedImageError and parser failures
        raise _unsupported(data, name) from exc
    try:
        with image:
            return to_rgb(_decode(image, max_pixels=max_pixels, box=decode_box))
    except ImageTooLargeError as exc:
        message = f"image {name} is too large to decode safely: {exc}"
        raise _error(ImageTooLargeError, message, str(exc)) from exc
    except Exception as exc:  # decoders raise every type there is
        reason = _reason(exc)
        raise _error(ImageDecodeError, f"cannot decode image {name}: {reason}", reason) from exc


def _reason(exc: BaseException) -> str:
    """The decoder's message, without Pillow's object reprs; its type when it has none."""
    text = re.sub(r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>", "", str(exc)).strip()
    return text or type(exc).__name__
