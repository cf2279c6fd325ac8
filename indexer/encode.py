"""The catalogue encoder: product images and texts -> L2-normalised embeddings.

This is the one module that touches `models`: images are decoded with
`models.images.open_image`; the encoder is anything shaped like `models.JointModel`.
Embeddings already in the cache are not computed again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
from models.images import open_image

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
class EncodedProducts:
    """Embeddings of products in input order; encoded_* count what was not in the cache."""

    image_vectors: np.ndarray  # (N, D) float32, L2-normalised
    text_vectors: np.ndarray  # (N, D) float32, L2-normalised
    image_sha256: list[str]
    encoded_images: int = 0
    encoded_texts: int = 0


def read_image_bytes(product: Product) -> bytes:
    try:
        return Path(product.image).read_bytes()
    except OSError as exc:
        raise CatalogImageError(
            f"cannot read the image of product {product.id!r} ({product.image}): "
            f"{exc.strerror or exc}; fix or remove the row and build again"
        ) from exc


def decode_image(product: Product, data: bytes) -> Image.Image:
    try:
        return open_image(data)
    except ImageDecodeError as exc:
        raise CatalogImageError(
            f"cannot decode the image of product {product.id!r} ({product.image}): "
            "the file is not a readable image; fix or remove the row and build again"
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
) -> tuple[np.ndarray, int]:
    """(len(keys), D) vectors for keys, computing the uncached ones with compute(rows)."""
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


def encode_batch(
    products: Sequence[Product], encoder: Encoder, cache: EmbeddingCache
) -> tuple[np.ndarray, np.ndarray, list[str], int, int]:
    """(images (B, D), texts (B, D), image sha256s, images encoded, texts encoded)."""
    blobs = [read_image_bytes(product) for product in products]
    shas = [hashlib.sha256(blob).hexdigest() for blob in blobs]
    dim = encoder.embed_dim

    def images(rows: list[int]) -> np.ndarray:
        pictures = [decode_image(products[row], blobs[row]) for row in rows]
        return _checked(
            encoder.encode_images(pictures, batch_size=len(rows)), len(rows), dim, "image"
        )

    def texts(rows: list[int]) -> np.ndarray:
        strings = [products[row].text for row in rows]
        return _checked(encoder.encode_texts(strings, batch_size=len(rows)), len(rows), dim, "text")

    image_vectors, new_images = _fill(cache, "image", shas, images)
    text_vectors, new_texts = _fill(cache, "text", [text_key(p.text) for p in products], texts)
    return image_vectors, text_vectors, shas, new_images, new_texts


def encode_products(
    products: Sequence[Product],
    encoder: Encoder,
    cache: EmbeddingCache,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
) -> EncodedProducts:
    """Embed every product's image and text, batch by batch, through the cache.

    Raises CatalogImageError naming the product when an image cannot be read or decoded.
    """
    if batch_size < 1:
        raise IndexerError(f"the batch size must be at least 1, got {batch_size}")
    dim = encoder.embed_dim
    result = EncodedProducts(
        np.zeros((len(products), dim), np.float32), np.zeros((len(products), dim), np.float32), []
    )
    with tqdm(total=len(products), unit=" products", desc="encoding", disable=not progress) as bar:
        for start in range(0, len(products), batch_size):
            batch = products[start : start + batch_size]
            images, texts, shas, new_images, new_texts = encode_batch(batch, encoder, cache)
            result.image_vectors[start : start + len(batch)] = images
            result.text_vectors[start : start + len(batch)] = texts
            result.image_sha256.extend(shas)
            result.encoded_images += new_images
            result.encoded_texts += new_texts
            bar.update(len(batch))
    return result
