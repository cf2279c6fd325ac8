"""The catalogue encoder: product images and texts -> L2-normalised embeddings.

This is the one module that touches `models`: images are decoded with
`models.images.open_image`; the encoder is anything shaped like `models.JointModel`.
Embeddings already in the cache are not computed again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import faiss
import numpy as np
from PIL import Image
from tqdm import tqdm

from indexer.cache import EmbeddingCache, Kind, text_key
from indexer.errors import CatalogImageError, EncoderError, IndexerError
from models.catalog import Product
from models.errors import ImageDecodeError
from models.images import DEFAULT_MAX_PIXELS, open_image

DEFAULT_BATCH_SIZE = 64


@runtime_checkable
class Encoder(Protocol):
    """What the indexer needs from a model (models.JointModel has this shape)."""

    @property
    def model_id(self) -> str:
        """A content hash naming the model; indices remember it."""
        ...

    @property
    def embed_dim(self) -> int: ...

    def encode_images(self, images: Sequence[Any], batch_size: int = ...) -> np.ndarray:
        """images: paths, bytes or PIL images -> (N, embed_dim) float32, L2-normalised."""
        ...

    def encode_texts(self, texts: Sequence[str], batch_size: int = ...) -> np.ndarray:
        """(N, embed_dim) float32, L2-normalised."""
        ...


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


def read_image_bytes(product: Product) -> bytes:
    try:
        return Path(product.image).read_bytes()
    except OSError as exc:
        raise CatalogImageError(
            f"cannot read the image of product {product.id!r} ({product.image}): "
            f"{exc.strerror or exc}"
        ) from exc


def decode_image(
    product: Product, data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    try:
        return open_image(data, max_pixels=max_pixels)
    except ImageDecodeError as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        raise CatalogImageError(
            f"cannot decode the image of product {product.id!r} ({product.image}): {reason}"
        ) from exc


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


def _decode_uncached(
    products: Sequence[Product], cache: EmbeddingCache, max_pixels: int
) -> tuple[dict[int, str], dict[str, Image.Image], dict[int, str]]:
    """Read every photo and decode those the cache lacks: ({row: sha256}, {sha256: picture},
    {row: why it is skipped})."""
    shas: dict[int, str] = {}
    problems: dict[int, str] = {}
    blobs: dict[str, bytes] = {}
    for row, product in enumerate(products):
        try:
            blob = read_image_bytes(product)
        except CatalogImageError as exc:
            problems[row] = str(exc)
            continue
        shas[row] = hashlib.sha256(blob).hexdigest()
        blobs.setdefault(shas[row], blob)
    cached = cache.get_many("image", list(blobs))
    pictures: dict[str, Image.Image] = {}
    failed: dict[str, str] = {}
    for row, sha in shas.items():
        if sha in cached or sha in pictures:
            continue
        if sha not in failed:
            try:
                pictures[sha] = decode_image(products[row], blobs[sha], max_pixels)
                continue
            except CatalogImageError as exc:
                failed[sha] = str(exc)
        problems[row] = failed[sha]
    for row in [row for row, sha in shas.items() if sha in failed]:
        problems.setdefault(row, failed[shas[row]])
        del shas[row]
    return shas, pictures, problems


def encode_batch(
    products: Sequence[Product],
    encoder: Encoder,
    cache: EmbeddingCache,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> _Batch:
    """Embed a batch; products whose photo cannot be read or decoded are skipped."""
    shas, pictures, problems = _decode_uncached(products, cache, max_pixels)
    kept = [row for row in range(len(products)) if row not in problems]
    dim = encoder.embed_dim
    sha_of = [shas[row] for row in kept]

    def images(rows: list[int]) -> np.ndarray:
        batch = [pictures[sha_of[row]] for row in rows]
        return _checked(encoder.encode_images(batch, batch_size=len(rows)), len(rows), dim, "image")

    def texts(rows: list[int]) -> np.ndarray:
        strings = [products[kept[row]].text for row in rows]
        return _checked(encoder.encode_texts(strings, batch_size=len(rows)), len(rows), dim, "text")

    image_vectors, new_images = _fill(cache, "image", sha_of, images, dim)
    text_keys = [text_key(products[row].text) for row in kept]
    text_vectors, new_texts = _fill(cache, "text", text_keys, texts, dim)
    skipped = [SkippedProduct(products[row].id, why) for row, why in sorted(problems.items())]
    return _Batch(image_vectors, text_vectors, sha_of, new_images, new_texts, kept, skipped)


def encode_products(
    products: Sequence[Product],
    encoder: Encoder,
    cache: EmbeddingCache,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
    max_image_pixels: int = DEFAULT_MAX_PIXELS,
) -> EncodedProducts:
    """Embed every product's image and text, batch by batch, through the cache.

    A product whose photo cannot be read, decoded, or is over `max_image_pixels` is
    skipped (listed in `skipped`, with the reason) and the others are encoded.
    """
    if batch_size < 1:
        raise IndexerError(f"the batch size must be at least 1, got {batch_size}")
    dim = encoder.embed_dim
    images, texts = [np.zeros((0, dim), np.float32)], [np.zeros((0, dim), np.float32)]
    result = EncodedProducts(images[0], texts[0], [])
    with tqdm(total=len(products), unit=" products", desc="encoding", disable=not progress) as bar:
        for start in range(0, len(products), batch_size):
            chunk = products[start : start + batch_size]
            batch = encode_batch(chunk, encoder, cache, max_pixels=max_image_pixels)
            images.append(batch.images)
            texts.append(batch.texts)
            result.image_sha256.extend(batch.shas)
            result.kept.extend(start + row for row in batch.kept)
            result.skipped.extend(batch.skipped)
            result.encoded_images += batch.new_images
            result.encoded_texts += batch.new_texts
            bar.update(len(chunk))
    result.image_vectors = np.concatenate(images)
    result.text_vectors = np.concatenate(texts)
    return result
