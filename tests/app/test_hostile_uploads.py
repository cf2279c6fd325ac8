"""Hostile uploads: a pixel budget with a message naming it, bombs refused before any
pixel is decoded, every refused format and decoder failure a 422, decoding bounded to
a few uploads at a time, and a seeded fuzzer that never gets a 500."""

from __future__ import annotations

import asyncio
import io
import random
import struct
import threading
import time
from collections.abc import Callable

import pytest
from app_fakes import FakeEncoder, FakeIndex, image_bytes
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image, ImageFile

import app.search
from app.holder import IndexHolder
from app.metrics import Metrics
from app.search import SearchService
from app.settings import BatchingSettings, LimitSettings


def _upload(client: TestClient, data: bytes, content_type: str = "image/jpeg"):  # type: ignore[no-untyped-def]
    return client.post("/v1/search/image", files={"file": ("q", data, content_type)})


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small valid JPEG whose frame header says width x height (the issue's 1.8 KB bomb)."""
    data = bytearray(image_bytes("JPEG", (8, 8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_a_bomb_under_pillows_threshold_is_refused_naming_the_limit(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """13000x13000 is 169 megapixels: Pillow only warns below 179; we refuse from the
    header, without decoding a pixel."""

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("a pixel was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    response = _upload(client, jpeg_claiming(13_000, 13_000))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "too large" in detail and "13000x13000" in detail
    assert "at most 40 megapixels" in detail


def test_the_pixel_budget_is_a_setting(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(limits={"max_image_pixels": 10_000})) as client:
        assert _upload(client, image_bytes("PNG", (100, 100)), "image/png").status_code == 200
        response = _upload(client, image_bytes("PNG", (101, 100)), "image/png")
        assert response.status_code == 422
        assert "at most 0.01 megapixels" in response.json()["detail"]


def _saved(fmt: str) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", (16, 16), (200, 30, 30))
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        _saved("AVIF"),  # RuntimeError from the AVIF plugin
        _saved("DDS"),  # NotImplementedError
        b"BLP2" + b"\x01" * 200,  # BLPFormatError
        b"\x00\x00\x00\x00" * 64,  # SPIDER-ish: AttributeError
        _saved("TIFF"),
        _saved("BMP"),
    ],
    ids=["avif", "dds", "blp", "spider", "tiff", "bmp"],
)
def test_refused_formats_get_422_naming_the_accepted_ones(client: TestClient, data: bytes) -> None:
    response = _upload(client, data, "image/png")
    assert response.status_code == 422, response.text
    assert "use JPEG, PNG, WebP or GIF" in response.json()["detail"]


def test_any_decoder_exception_is_a_422(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for error in (NotImplementedError("x"), AttributeError("y"), RuntimeError(), KeyError(3)):

        def fail(self: ImageFile.ImageFile, error: Exception = error) -> None:
            raise error

        monkeypatch.setattr(ImageFile.ImageFile, "load", fail)
        response = _upload(client, image_bytes("PNG"), "image/png")
        assert response.status_code == 422, (error, response.text)
        assert response.json()["detail"].startswith("file is not a readable image: ")


def test_uploads_are_decoded_a_few_at_a_time(
    monkeypatch: pytest.MonkeyPatch, index: FakeIndex, encoder: FakeEncoder
) -> None:
    """Eight photos at once, two decoding threads: never more than two decode together."""
    active, peak, lock = 0, 0, threading.Lock()

    def slow_decode(data: bytes, **options: object) -> Image.Image:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        return Image.new("RGB", (4, 4))

    monkeypatch.setattr(app.search, "open_image", slow_decode)
    service = SearchService(
        encoder,
        IndexHolder(index, owned=False),
        Metrics(),
        batching=BatchingSettings(),
        limits=LimitSettings(max_concurrent_decodes=2),
    )

    async def main() -> None:
        images = await asyncio.gather(*(service.decode(b"x") for _ in range(8)))
        assert len(images) == 8

    asyncio.run(main())
    assert peak == 2


# -- the fuzzer ----------------------------------------------------------------------


def _exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation
    exif[0x010F] = "Camera maker"
    exif[0x0131] = "Software"
    exif[0x011A] = (72, 1)  # XResolution
    return exif.tobytes()


def _seeds() -> list[bytes]:
    """Valid photos of every accepted format (and a few refused ones, which attackers
    send too), the mutator's starting points."""
    rgba = Image.new("RGBA", (24, 32), (10, 200, 30, 128))
    frames = [Image.new("P", (24, 32), i) for i in range(3)]
    out = []
    for image, fmt, options in (
        (Image.new("RGB", (24, 32), (200, 30, 30)), "JPEG", {"quality": 80, "exif": _exif()}),
        (Image.new("RGB", (24, 32), (20, 30, 230)), "JPEG", {"progressive": True}),
        (rgba, "PNG", {}),
        (Image.new("L", (24, 32), 100), "PNG", {}),
        (rgba, "WEBP", {"lossless": True}),
        (Image.new("RGB", (24, 32), (1, 2, 3)), "WEBP", {"quality": 50}),
        (frames[0], "GIF", {"save_all": True, "append_images": frames[1:]}),
        (Image.new("RGB", (24, 32), (9, 9, 9)), "TIFF", {}),
        (Image.new("RGB", (24, 32), (9, 9, 9)), "AVIF", {}),
    ):
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **options)
        out.append(buffer.getvalue())
    return out


INTERESTING = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four random edits: flipped bits, interesting bytes, a cut, a copied
    slice, or a header's size field set to something big."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(6)
        at = rng.randrange(len(out)) if out else 0
        if choice == 0 and out:
            out[at] ^= 1 << rng.randrange(8)
        elif choice == 1 and out:
            out[at] = rng.choice(INTERESTING)
        elif choice == 2:
            out = out[: rng.randrange(len(out) + 1)]
        elif choice == 3 and out:
            span = out[at : at + rng.randint(1, 64)]
            where = rng.randrange(len(out) + 1)
            out[where:where] = span
        elif choice == 4 and len(out) > 4:
            out[at : at + 4] = struct.pack(">I", rng.choice((0, 1, 2**16 - 1, 2**31, 2**32 - 1)))
        elif out:
            del out[at : at + rng.randint(1, 16)]
    return bytes(out)


FUZZ_CASES = 300


def test_fuzzed_photos_never_get_a_500(client: TestClient) -> None:
    """300 seeded mutations of valid JPEG, PNG, WebP and GIF files: each answer is 200 or
    a 422 with a message, and the service keeps answering afterwards."""
    rng = random.Random(11)
    seeds = _seeds()
    statuses: dict[int, int] = {}
    for case in range(FUZZ_CASES):
        data = mutate(seeds[case % len(seeds)], rng)
        response = _upload(client, data, "application/octet-stream")
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code in (200, 422), (case, data[:64], response.text)
        if response.status_code == 422:
            assert response.json()["detail"]
    assert statuses.get(422) and statuses.get(200), statuses  # the mutations hit both sides
    assert client.get("/healthz").status_code == 200
    assert _upload(client, seeds[0]).status_code == 200
