"""Reading, decoding and preprocessing catalogue photos ahead of the encoder.

A build reads every photo (its sha256 keys the embedding cache), then decodes those the
cache lacks and turns them into the model's pixel arrays (models.transforms). Decoding
and preprocessing cost CPU that threads cannot overlap with encoding (the GIL), so with
`workers` > 0 they run in worker processes: `DecodePool.submit` hands a chunk's photos
to the pool and returns at once, and the build encodes the previous chunk meanwhile.
With workers=0 everything runs in the calling process, one chunk at a time.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from indexer.errors import CatalogImageError, IndexerError
from models.catalog import Product
from models.errors import ImageDecodeError
from models.images import DEFAULT_MAX_PIXELS, open_image
from models.transforms import ImageTransform

# Below this many products a build decodes in process: starting workers costs more.
MIN_PRODUCTS_FOR_WORKERS = 2000


def default_workers(products: int) -> int:
    """Worker processes for a build of `products`: one core is left to the encoder."""
    if products < MIN_PRODUCTS_FOR_WORKERS:
        return 0
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def read_image_bytes(product: Product) -> bytes:
    try:
        return Path(product.image).read_bytes()
    except OSError as exc:
        raise CatalogImageError(
            f"cannot read the image of product {product.id!r} ({product.image}): "
            f"{exc.strerror or exc}"
        ) from exc


@dataclass(frozen=True)
class Photo:
    """One photo to decode, with what names it in an error."""

    sha: str
    product_id: str
    path: str
    data: bytes


@dataclass
class ReadChunk:
    """A chunk's photos as read: {row: sha256}, {row: why it is skipped}, and one Photo
    per distinct sha256."""

    shas: dict[int, str] = field(default_factory=dict)
    problems: dict[int, str] = field(default_factory=dict)
    photos: dict[str, Photo] = field(default_factory=dict)


def read_chunk(products: Sequence[Product]) -> ReadChunk:
    chunk = ReadChunk()
    for row, product in enumerate(products):
        try:
            blob = read_image_bytes(product)
        except CatalogImageError as exc:
            chunk.problems[row] = str(exc)
            continue
        sha = hashlib.sha256(blob).hexdigest()
        chunk.shas[row] = sha
        if sha not in chunk.photos:
            chunk.photos[sha] = Photo(sha, product.id, str(product.image), blob)
    return chunk


@dataclass
class Decoded:
    """{sha256: pixels (3, H, W) float32, or the RGB image without a transform} and
    {sha256: why it cannot be decoded}."""

    pictures: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def decode_photos(
    photos: Sequence[Photo], transform: ImageTransform | None, max_pixels: int
) -> Decoded:
    """Decode (and, with a transform, preprocess) each photo; runs in a worker."""
    decoded = Decoded()
    for photo in photos:
        try:
            image = open_image(photo.data, max_pixels=max_pixels)
        except ImageDecodeError as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            decoded.failed[photo.sha] = (
                f"cannot decode the image of product {photo.product_id!r} ({photo.path}): {reason}"
            )
            continue
        decoded.pictures[photo.sha] = image if transform is None else transform.pixels(image)
    return decoded


class DecodePool:
    """Decodes chunks of photos in `workers` processes (0: in the calling process)."""

    def __init__(
        self,
        workers: int,
        transform: ImageTransform | None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        if workers < 0:
            raise IndexerError(f"the number of decoding workers must be 0 or more, got {workers}")
        self.workers = workers
        self._transform = transform
        self._max_pixels = max_pixels
        self._pool: Executor | None = None
        if workers > 0:
            # fork: workers start at once and share the parent's imports; they only run
            # Pillow and numpy, never the parent's encoder threads.
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            self._pool = ProcessPoolExecutor(workers, mp_context=context)

    def submit(self, photos: Sequence[Photo]) -> Future[Decoded]:
        if self._pool is None or not photos:
            done: Future[Decoded] = Future()
            done.set_result(decode_photos(photos, self._transform, self._max_pixels))
            return done
        return self._pool.submit(decode_photos, list(photos), self._transform, self._max_pixels)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
