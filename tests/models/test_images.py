"""models.images.open_image and JointModel.encode_images on images of every mode and size."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import ImageDecodeError, JointModel, open_image

WHITE, RED, BLUE = (255, 255, 255), (255, 0, 0), (0, 0, 255)


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _rgba() -> bytes:
    image = Image.new("RGBA", (20, 30), (*RED, 255))
    image.paste((0, 0, 0, 0), (0, 0, 10, 30))  # left half fully transparent
    return _encoded(image, "PNG")


def _la() -> bytes:
    image = Image.new("LA", (20, 30), (0, 255))
    image.paste((0, 0), (0, 0, 10, 30))
    return _encoded(image, "PNG")


def _palette() -> bytes:
    image = Image.new("P", (20, 30), 1)
    image.putpalette([*BLUE, *RED] + [0] * 762)
    image.paste(0, (0, 0, 10, 30))
    return _encoded(image, "PNG", transparency=0)  # index 0 (left half) transparent


def _sixteen_bit() -> bytes:
    ramp = np.tile(np.linspace(0, 4000, 20, dtype=np.uint16), (30, 1))  # a dim 16-bit ramp
    return _encoded(Image.fromarray(ramp), "PNG")


def _float() -> Image.Image:
    """Float images only come as PIL images: no shop format stores them (TIFF is refused)."""
    values = np.tile(np.linspace(-3.0, 5.0, 20, dtype=np.float32), (30, 1))
    return Image.fromarray(values, mode="F")


def _one_bit() -> bytes:
    image = Image.new("1", (20, 30), 0)
    image.paste(1, (10, 0, 20, 30))
    return _encoded(image, "PNG")


def _exif_rotated() -> bytes:
    """40x20 stored, left half red, right half blue; EXIF orientation 6 = rotate 90° CW."""
    image = Image.new("RGB", (40, 20), RED)
    image.paste(BLUE, (20, 0, 40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encoded(image, "JPEG", exif=exif.tobytes(), quality=95)


def _gif() -> bytes:
    frames = [Image.new("RGB", (20, 30), RED), Image.new("RGB", (20, 30), BLUE)]
    return _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


# name -> (encoded image, size of the upright RGB result)
VALID: dict[str, tuple[Callable[[], bytes | Image.Image], tuple[int, int]]] = {
    "rgb-jpeg": (lambda: _encoded(Image.new("RGB", (60, 80), RED), "JPEG"), (60, 80)),
    "rgba-png": (_rgba, (20, 30)),
    "la-png": (_la, (20, 30)),
    "grayscale-l": (lambda: _encoded(Image.new("L", (20, 30), 128), "PNG"), (20, 30)),
    "palette-p": (_palette, (20, 30)),
    "cmyk-jpeg": (lambda: _encoded(Image.new("CMYK", (20, 30), (255, 0, 0, 0)), "JPEG"), (20, 30)),
    "one-bit": (_one_bit, (20, 30)),
    "sixteen-bit": (_sixteen_bit, (20, 30)),
    "float-f": (_float, (20, 30)),
    "tiny-1x1": (lambda: _encoded(Image.new("RGB", (1, 1), BLUE), "PNG"), (1, 1)),
    "huge-aspect-2000x10": (
        lambda: _encoded(Image.new("RGB", (2000, 10), BLUE), "PNG"),
        (2000, 10),
    ),
    "exif-rotated": (_exif_rotated, (20, 40)),
    "gif-animated": (_gif, (20, 30)),
    "webp": (lambda: _encoded(Image.new("RGB", (20, 30), RED), "WEBP", lossless=True), (20, 30)),
}


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG header announcing width x height pixels, with (almost) no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def _truncated_jpeg(sample_dir: Path) -> bytes:
    data = next((sample_dir / "images").glob("*.jpg")).read_bytes()
    return data[: len(data) // 2]


def _pixel(image: Image.Image, x: int, y: int) -> tuple[int, int, int]:
    return image.getpixel((x, y))  # type: ignore[return-value]


@pytest.mark.parametrize("name", list(VALID))
def test_every_mode_and_size_decodes_to_upright_rgb(name: str) -> None:
    make, size = VALID[name]
    image = open_image(make())
    assert image.mode == "RGB"
    assert image.size == size


def test_pil_images_of_every_mode_convert_to_rgb() -> None:
    for mode in ("RGB", "RGBA", "LA", "L", "P", "CMYK", "1", "I;16", "I", "F", "YCbCr", "HSV"):
        image = open_image(Image.new(mode, (7, 5)))
        assert (image.mode, image.size) == ("RGB", (7, 5)), mode


def test_transparency_is_composited_onto_white() -> None:
    for make in (_rgba, _la, _palette):
        image = open_image(make())
        assert _pixel(image, 2, 2) == WHITE  # transparent left half
        assert _pixel(image, 15, 2) != WHITE  # opaque right half


def test_pixel_values_of_special_modes() -> None:
    assert _pixel(open_image(_one_bit()), 2, 2) == (0, 0, 0)
    assert _pixel(open_image(_one_bit()), 15, 2) == WHITE
    # 16-bit and float images are stretched to their own range, not clipped to 8 bits
    for make in (_sixteen_bit, _float):
        image = open_image(make())
        assert _pixel(image, 0, 0) == (0, 0, 0)
        assert _pixel(image, 19, 0) == WHITE
    cyan = _pixel(open_image(Image.new("CMYK", (2, 2), (255, 0, 0, 0))), 0, 0)
    assert cyan == (0, 255, 255)
    assert _pixel(open_image(Image.new("L", (2, 2), 128)), 0, 0) == (128, 128, 128)


def test_exif_orientation_is_applied() -> None:
    image = open_image(_exif_rotated())
    assert image.size == (20, 40)  # 90° turn: width and height swap
    top, bottom = _pixel(image, 10, 5), _pixel(image, 10, 35)
    # rotating 90° clockwise moves the stored left (red) half to the top
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_first_frame_of_an_animated_gif() -> None:
    assert _pixel(open_image(_gif()), 5, 5) == RED


def test_paths_bytes_and_pil_images_are_all_accepted(tmp_path: Path) -> None:
    data = VALID["rgba-png"][0]()
    (tmp_path / "a.png").write_bytes(data)
    from_path, from_str = open_image(tmp_path / "a.png"), open_image(str(tmp_path / "a.png"))
    from_bytes, from_pil = open_image(bytearray(data)), open_image(Image.open(io.BytesIO(data)))
    for image in (from_str, from_bytes, from_pil):
        assert image.tobytes() == from_path.tobytes()


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("truncated-jpeg", "cannot decode image uploaded bytes"),
        ("random-bytes", "cannot decode image uploaded bytes"),
        ("empty-bytes", "cannot decode image uploaded bytes"),
        ("decompression-bomb", "too large to decode safely"),
    ],
)
def test_undecodable_bytes_raise_image_decode_error(
    name: str, match: str, sample_dir: Path
) -> None:
    data = {
        "truncated-jpeg": lambda: _truncated_jpeg(sample_dir),
        "random-bytes": lambda: (
            np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
        ),
        "empty-bytes": lambda: b"",
        "decompression-bomb": lambda: _png_claiming(20_000, 20_000),
    }[name]()
    with pytest.raises(ImageDecodeError, match=match):
        open_image(data)


def test_undecodable_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"not an image at all")
    with pytest.raises(ImageDecodeError, match=r"cannot decode image .*bad\.jpg"):
        open_image(tmp_path / "bad.jpg")
    with pytest.raises(ImageDecodeError, match=r"image file not found: .*absent\.jpg"):
        open_image(tmp_path / "absent.jpg")


def _check_embeddings(embeddings: np.ndarray, count: int, dim: int) -> None:
    assert embeddings.shape == (count, dim)
    assert embeddings.dtype == np.float32
    assert np.isfinite(embeddings).all()
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)


def test_every_mode_and_size_encodes(tiny_model: JointModel) -> None:
    inputs = [make() for make, _ in VALID.values()]
    embeddings = tiny_model.encode_images(
        inputs, batch_size=5
    )  # several batches, a ragged last one
    _check_embeddings(embeddings, len(inputs), tiny_model.embed_dim)
    np.testing.assert_allclose(tiny_model.encode_images(inputs[:1]), embeddings[:1], atol=1e-6)


def test_pil_images_of_every_mode_encode(tiny_model: JointModel) -> None:
    modes = ("RGB", "RGBA", "LA", "L", "P", "CMYK", "1", "I;16", "I", "F")
    images = [Image.new(mode, (31, 17)) for mode in modes]
    _check_embeddings(tiny_model.encode_images(images), len(modes), tiny_model.embed_dim)


def test_catalogue_photos_encode_from_paths(tiny_model: JointModel, sample_dir: Path) -> None:
    paths = sorted((sample_dir / "images").glob("*.jpg"))[:10]
    _check_embeddings(tiny_model.encode_images(paths), 10, tiny_model.embed_dim)


def test_encode_images_of_nothing(tiny_model: JointModel) -> None:
    _check_embeddings(tiny_model.encode_images([]), 0, tiny_model.embed_dim)


def test_encode_images_names_the_undecodable_one(tiny_model: JointModel, tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    good = VALID["rgb-jpeg"][0]()
    with pytest.raises(ImageDecodeError, match=r"broken\.png"):
        tiny_model.encode_images([good, tmp_path / "broken.png", good])
