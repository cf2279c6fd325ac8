"""The catalogue encoder: product images and texts -> L2-normalised embeddings.

Photos are read and decoded (indexer.decode_pool: in worker processes, chunks ahead of
the encoder) into the model's pixel arrays; the encoder is anything shaped like
`models.JointModel`. Embeddings already in the cache are not computed again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import faiss
import numpy as np

from indexer.cache import EmbeddingCache, Kind, text_key
from indexer.decode_pool import (
    Decoded,
    DecodePool,
    ReadChunk,
    default_workers,
    read_chunk,
)
from indexer.errors import EncoderError, IndexerError
from models.catalog import Product
from models.encoders import Encoder
from models.images import DEFAULT_MAX_PIXELS
from models.progress import progress_bar
from models.transforms import ImageTransform

DEFAULT_BATCH_SIZE = 64
# Titles are encoded in length-sorted batches of this size: on the CPU, batches of
# similar-length titles cost ~20% less than the whole chunk padded to its longest.
TEXT_BATCH_SIZE = 32
# Off a terminal (docker logs, CI, a file) the progress is a plain line this often.
PROGRESS_INTERVAL_S = 5.0


@dataclass
class SkippedProduct:
    """A catalogue product left out of a build: its photo cannot be read or decoded."""

    id: str
    reason: str


@dataclass
class EncodedProducts:
    """Embeddings of the kept products in input order; encoded_* count what was not in
    the cache. `kept` indexes the input products; the others are in `skipped`."""

    image_vectors: np.ndarray  # (K, D) float32, L2-normalised
    text_vectors: np.ndarray  # (K, D) float32, L2-normalised
    image_sha256: list[str]
    encoded_images: int = 0
    encoded_texts: int = 0
    kept: list[int] = field(default_factory=list)
    skipped: list[SkippedProduct] = field(default_factory=list)


def _checked(vectors: np.ndarray, count: int, dim: int, what: str) -> np.ndarray:
    array = np.array(vectors, dtype=np.float32, copy=True)
    if array.shape != (count, dim):
        raise EncoderError(
            f"the encoder returned {what} embeddings of shape {array.shape}, expected {(count, dim)}"
        )
    faiss.normalize_L2(array)  # inner product must be the cosine, whatever the encoder did
    return array


def _fill(
    cache: EmbeddingCache,
    kind: Kind,
    keys: list[str],
    compute: Callable[[list[int]], np.ndarray],
    dim: int,
) -> tuple[np.ndarray, int]:
    """(len(keys), D) vectors for keys, computing the uncached ones with compute(rows)."""
    if not keys:
        return np.zeros((0, dim), np.float32), 0
    found = cache.get_many(kind, keys)
    first_row: dict[str, int] = {}
    for row, key in enumerate(keys):
        if key not in found:
            first_row.setdefault(key, row)
    if first_row:
        fresh = compute(list(first_row.values()))
        cache.put_many(kind, list(first_row), fresh)
        found.update(zip(first_row, fresh))
    return np.stack([found[key] for key in keys]), len(first_row)


@dataclass
class _Batch:
    images: np.ndarray  # (K, D)
    texts: np.ndarray  # (K, D)
    shas: list[str]
    new_images: int
    new_texts: int
    kept: list[int]  # rows of the batch that were kept
    skipped: list[SkippedProduct]


def encode_batch(
    products: Sequence[Product],
    read: ReadChunk,
    decoded: Decoded,
    encoder: Encoder,
    cache: EmbeddingCache,
) -> _Batch:
    """Embed a batch whose photos were read and decoded (those the cache lacked);
    products whose photo cannot be read or decoded are skipped."""
    problems = dict(read.problems)
    problems.update(
        {row: decoded.failed[sha] for row, sha in read.shas.items() if sha in decoded.failed}
    )
    kept = [row for row in range(len(products)) if row not in problems]
    dim = encoder.embed_dim
    sha_of = [read.shas[row] for row in kept]

    def images(rows: list[int]) -> np.ndarray:
        batch = [decoded.pictures[sha_of[row]] for row in rows]
        return _checked(encoder.encode_images(batch, batch_size=len(rows)), len(rows), dim, "image")

    def texts(rows: list[int]) -> np.ndarray:
        strings = [products[kept[row]].text for row in rows]
        vectors = encoder.encode_texts(strings, batch_size=TEXT_BATCH_SIZE)
        return _checked(vectors, len(rows), dim, "text")

    image_vectors, new_images = _fill(cache, "image", sha_of, images, dim)
    text_keys = [text_key(products[row].text) for row in kept]
    text_vectors, new_texts = _fill(cache, "text", text_keys, texts, dim)
    skipped = [SkippedProduct(products[row].id, why) for row, why in sorted(problems.items())]
    return _Batch(image_vectors, text_vectors, sha_of, new_images, new_texts, kept, skipped)


@dataclass
class _Ahead:
    """A chunk read, whose uncached photos are being decoded."""

    start: int
    products: Sequence[Product]
    read: ReadChunk
    decoded: Future[Decoded]


def _read_ahead(
    products: Sequence[Product], start: int, cache: EmbeddingCache, pool: DecodePool
) -> _Ahead:
    read = read_chunk(products)
    cached = cache.get_many("image", list(read.photos))
    todo = [photo for sha, photo in read.photos.items() if sha not in cached]
    return _Ahead(start, products, read, pool.submit(todo))


def _image_transform(encoder: Encoder) -> ImageTransform | None:
    """The encoder's preprocessing when it has models' (workers then hand it pixels)."""
    transform = getattr(encoder, "transform", None)
    return transform if isinstance(transform, ImageTransform) else None


def encode_products(
    products: Sequence[Product],
    encoder: Encoder,
    cache: EmbeddingCache,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
    max_image_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
) -> EncodedProducts:
    """Embed every product's image and text, batch by batch, through the cache.

    A product whose photo cannot be read, decoded, or is over `max_image_pixels` is
    skipped (listed in `skipped`, with the reason) and the others are encoded.
    workers: processes decoding photos ahead of the encoder (indexer.decode_pool);
    None: by catalogue size and cores, 0: decode in this process.
    """
    if batch_size < 1:
        raise IndexerError(f"the batch size must be at least 1, got {batch_size}")
    workers = default_workers(len(products)) if workers is None else workers
    dim = encoder.embed_dim
    images, texts = [np.zeros((0, dim), np.float32)], [np.zeros((0, dim), np.float32)]
    result = EncodedProducts(images[0], texts[0], [])
    starts = iter(range(0, len(products), batch_size))
    pending: deque[_Ahead] = deque()
    with (
        DecodePool(workers, _image_transform(encoder), max_image_pixels) as pool,
        progress_bar(
            total=len(products),
            unit=" products",
            desc="encoding",
            disable=not progress,
            interval=PROGRESS_INTERVAL_S,
        ) as bar,
    ):

        def read_next() -> None:
            start = next(starts, None)
            if start is not None:
                chunk = products[start : start + batch_size]
                pending.append(_read_ahead(chunk, start, cache, pool))

        for _ in range(1 + 2 * workers):  # chunks decoding while one is encoded
            read_next()
        while pending:
            ahead = pending.popleft()
            read_next()
            batch = encode_batch(ahead.products, ahead.read, ahead.decoded.result(), encoder, cache)
            images.append(batch.images)
            texts.append(batch.texts)
            result.image_sha256.extend(batch.shas)
            result.kept.extend(ahead.start + row for row in batch.kept)
            result.skipped.extend(batch.skipped)
            result.encoded_images += batch.new_images
            result.encoded_texts += batch.new_texts
            bar.update(len(ahead.products))
    result.image_vectors = np.concatenate(images)
    result.text_vectors = np.concatenate(texts)
    return result
