"""open_image against hostile bytes: a pixel budget read from the header, only shop
formats, reduced decoding of large photos, and ImageDecodeError whatever goes wrong."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image, ImageFile

from models import ImageDecodeError, open_image
from models.images import DEFAULT_MAX_PIXELS, ImageTooLargeError

RED, BLUE = (255, 0, 0), (0, 0, 255)


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def jpeg_claiming(width: int, height: int) -> bytes:
    """A valid small JPEG whose frame header (SOF0) is rewritten to say width x height."""
    data = bytearray(encoded(Image.new("RGB", (8, 8), RED), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_claiming(width: int, height: int) -> bytes:
    """A 36-byte lossless WebP whose VP8L header says width x height (the 38-byte bomb of
    the issue decodes to 12000x12000)."""
    data = encoded(Image.new("RGB", (1, 1), RED), "WEBP", lossless=True)
    at = data.index(b"VP8L") + 9  # after the chunk header and the 0x2f signature byte
    bits = struct.unpack("<I", data[at : at + 4])[0] & ~((1 << 28) - 1)
    bits |= (width - 1) | ((height - 1) << 14)
    return data[:at] + struct.pack("<I", bits) + data[at + 4 :]


@pytest.mark.parametrize(
    "bomb",
    [lambda: jpeg_claiming(13_000, 13_000), lambda: webp_claiming(12_000, 12_000)],
    ids=["jpeg-13000x13000", "webp-12000x12000"],
)
def test_bombs_under_pillows_threshold_are_refused_from_the_header(bomb) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ImageTooLargeError, match="at most 40 megapixels") as raised:
        open_image(bomb())
    assert "megapixels" in raised.value.reason  # type: ignore[attr-defined]


def test_the_pixel_budget_is_a_parameter() -> None:
    data = encoded(Image.new("RGB", (300, 200), RED), "PNG")
    assert open_image(data, max_pixels=60_000).size == (300, 200)
    with pytest.raises(ImageTooLargeError, match=r"300x200 pixels .*at most 0.05 megapixels"):
        open_image(data, max_pixels=50_000)
    assert DEFAULT_MAX_PIXELS == 40_000_000


def test_large_jpegs_are_decoded_reduced() -> None:
    """A 4000x3000 JPEG is decoded by libjpeg at 1/4 scale (still covering 512x512)."""
    data = encoded(Image.new("RGB", (4000, 3000), BLUE), "JPEG")
    assert open_image(data).size == (1000, 750)
    assert open_image(data, decode_box=None).size == (4000, 3000)


def test_large_pngs_are_reduced_after_decoding() -> None:
    data = encoded(Image.new("RGB", (2048, 1100), BLUE), "PNG")
    image = open_image(data)
    assert image.size == (1024, 550) and image.getpixel((5, 5)) == BLUE


def test_reduced_exif_rotated_photos_stay_upright() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise
    data = encoded(Image.new("RGB", (2400, 1200), RED), "JPEG", exif=exif.tobytes())
    width, height = open_image(data).size
    assert height > width


# An orientation tag, and tag 0x011f (YPosition, a rational) typed as text: Pillow's
# EXIF transpose raises TypeError on it (other damage gives struct.error, SyntaxError).
BROKEN_EXIF = (
    b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x02\x01\x1f\x00\x02\x00\x00\x00\x06\x00\x00\x00&"
    b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\xfc\x00\x00\x00\x00\x00\xaaanon\x00"
)


def test_a_broken_exif_block_does_not_fail_the_photo() -> None:
    """The pixels are fine, only the metadata is broken: the photo is decoded unturned."""
    data = encoded(Image.new("RGB", (40, 20), RED), "JPEG", exif=BROKEN_EXIF)
    assert open_image(data).size == (40, 20)
    # and once more from the decoded image, as encode_images does with what it is given
    assert open_image(open_image(data)).size == (40, 20)


def _saved(fmt: str) -> bytes:
    image = Image.new("RGB", (16, 16), RED)
    if fmt == "SPIDER":
        image = image.convert("F")
    return encoded(image, fmt)


@pytest.mark.parametrize(
    ("fmt", "named"),
    [
        ("TIFF", "TIFF"),
        ("BMP", "BMP"),
        ("AVIF", "HEIC/AVIF"),
        ("DDS", "DDS"),
        ("ICO", "ICO"),
        ("JPEG2000", "JPEG 2000"),
        ("QOI", "QOI"),
        ("SPIDER", None),
        ("PPM", None),
        ("TGA", None),
        ("PCX", None),
    ],
)
def test_formats_outside_the_shop_list_are_refused(fmt: str, named: str | None) -> None:
    with pytest.raises(ImageDecodeError, match="use JPEG, PNG, WebP or GIF") as raised:
        open_image(_saved(fmt))
    if named:
        assert f"it is {named}, which is not accepted" in str(raised.value)


def test_a_blp_header_is_not_parsed() -> None:
    """BLP and DDS headers once raised BLPFormatError / NotImplementedError as 500s."""
    for data in (b"BLP2" + b"\x01" * 200, b"DDS |" + b"\x00" * 200):
        with pytest.raises(ImageDecodeError, match="which is not accepted"):
            open_image(data)


@pytest.mark.parametrize(
    "error",
    [
        NotImplementedError("no"),
        AttributeError("x"),
        RuntimeError("y"),
        SyntaxError("z"),
        MemoryError(),
        IndexError("i"),
        struct.error("s"),
    ],
)
def test_every_decoder_exception_becomes_image_decode_error(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def fail(self: ImageFile.ImageFile) -> None:
        raise error

    monkeypatch.setattr(ImageFile.ImageFile, "load", fail)
    with pytest.raises(ImageDecodeError, match="cannot decode image uploaded bytes: ."):
        open_image(encoded(Image.new("RGB", (8, 8), RED), "PNG"))


def test_mpo_camera_jpegs_are_accepted() -> None:
    frames = [Image.new("RGB", (30, 20), RED), Image.new("RGB", (30, 20), BLUE)]
    data = encoded(frames[0], "MPO", save_all=True, append_images=frames[1:])
    image = open_image(data)
    assert image.size == (30, 20) and image.getpixel((3, 3))[0] > 200
