"""Hubness correction for queries that describe one product.

In a shared embedding space some photos sit close to very many texts ("hubs"): a plain
product shot on white near every description. For a query that names one product ("nike
men navy blue running shoes") a hub in the top 10 is nearly always wrong. CSLS (Lample et
al., "Word translation without parallel data", ICLR 2018) lowers each gallery item's
score by how close it sits to typical queries:

    corrected(q, g) = cos(q, g) - alpha * r(g),  r(g) = mean of g's k highest cosines
                                                        to a bank of typical queries

The bank is a sample of the training split's titles, stored with the model
(`query_bank.txt`); the evaluation's and the held-out queries are never in it. A query
of one or two words ("Tshirts", "Navy Blue") names a kind of product that many products
answer, and there the most typical photos are right: measured on the val split, the
correction gained whole-title search and lost colour P@10, while queries of three words
or more ("navy blue shirts", "shirts for men") lost nothing. So only queries of at least
`min_words` words are corrected (`is_specific`).

Photo uploads have the mirror problem: some titles sit close to every photo. Their bank
is photos: the embeddings of a seeded sample of the training split's photos, stored with
the model (`photo_bank.npz`, int8 with one scale per vector: `pack_vectors`), and every
photo query over titles is corrected (a photo describes one product).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

DEFAULT_ALPHA = 0.5  # chosen on the val split (docs/training-log.md, hubness)
DEFAULT_K = 10
DEFAULT_MIN_WORDS = 3
BANK_SIZE = 5000  # val: 5,000, 10,000 and 20,000 titles scored within 0.004
# val (scripts/photo_hubness_study.py): 1,000 to 10,000 photos scored within 0.006, and
# int8 within 0.001 of float32; 2,000 in int8 is 1 MB of the artifact's 40.
PHOTO_BANK_SIZE = 2000
_CHUNK = 2048  # gallery rows per matrix product: bounds memory to CHUNK x bank floats


def hubness(gallery: np.ndarray, bank: np.ndarray, k: int = DEFAULT_K) -> np.ndarray:
    """(N, D) gallery vectors, (M, D) bank query vectors, both L2-normalised -> (N,)
    float32: each gallery vector's mean cosine to its k nearest bank queries."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    gallery = np.asarray(gallery, dtype=np.float32)
    bank = np.asarray(bank, dtype=np.float32)
    if gallery.ndim != 2 or bank.ndim != 2 or gallery.shape[1] != bank.shape[1]:
        raise ValueError(f"shapes do not match: gallery {gallery.shape}, bank {bank.shape}")
    out = np.zeros(len(gallery), dtype=np.float32)
    if len(bank) == 0:
        return out
    k = min(k, len(bank))
    for start in range(0, len(gallery), _CHUNK):
        scores = gallery[start : start + _CHUNK] @ bank.T
        nearest = np.partition(scores, -k, axis=1)[:, -k:]
        out[start : start + len(scores)] = nearest.mean(axis=1)
    return out


def pack_vectors(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M, D) float vectors -> (M, D) int8 codes and (M,) float32 scales, one per row:
    row i is about codes[i] * scales[i] (`unpack_vectors`)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or not np.isfinite(vectors).all():
        raise ValueError(f"expected finite (M, D) vectors, got shape {vectors.shape}")
    peak = np.abs(vectors).max(axis=1) if vectors.size else np.zeros(len(vectors), np.float32)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    codes = np.clip(np.rint(vectors / scales[:, None]), -127, 127).astype(np.int8)
    return codes, scales


def unpack_vectors(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The (M, D) float32 rows `pack_vectors` packed, L2-normalised again (zero rows stay
    zero)."""
    vectors = np.asarray(codes, dtype=np.float32) * np.asarray(scales, dtype=np.float32)[:, None]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def sample_rows(count: int, size: int, seed: int = 0) -> list[int]:
    """A seeded, sorted sample of `size` of range(count) (all of them when fewer): which
    training products' photos make the photo bank."""
    if count <= size:
        return list(range(count))
    return sorted(int(i) for i in np.random.default_rng(seed).choice(count, size, replace=False))


class PhotoEncoder(Protocol):
    def encode_images(self, images: Sequence[Any], batch_size: int = ...) -> np.ndarray: ...


def encode_photo_bank(
    model: PhotoEncoder, photos: Sequence[Any], size: int = PHOTO_BANK_SIZE, seed: int = 0
) -> np.ndarray:
    """The photo bank of `model`: its embeddings of a seeded sample of `size` of `photos`
    (the training split's: never a photo an evaluation queries with)."""
    return model.encode_images([photos[i] for i in sample_rows(len(photos), size, seed)])


def photo_bank_of(model: object) -> np.ndarray | None:
    """The model's photo bank, (M, D) normalised photo embeddings; None when it has none
    (an older artifact, or a test's fake encoder)."""
    bank = getattr(model, "photo_bank", None)
    return None if bank is None or len(bank) == 0 else np.asarray(bank, dtype=np.float32)


def query_bank_of(model: object) -> list[str]:
    """The model's query bank: its artifact's `query_bank.txt`, empty when it has none
    (an older artifact, or a test's fake encoder, which lacks the attribute)."""
    return list(getattr(model, "query_bank", None) or [])


def is_specific(query: str, min_words: int = DEFAULT_MIN_WORDS) -> bool:
    """Whether a text query describes one product (at least `min_words` words) rather
    than a kind of product; only those are hubness-corrected."""
    return len(query.split()) >= min_words


def sample_bank(texts: Sequence[str], size: int = BANK_SIZE, seed: int = 0) -> list[str]:
    """A seeded sample of `size` distinct texts (all of them when fewer), sorted."""
    distinct = sorted(set(texts))
    if len(distinct) <= size:
        return distinct
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(distinct), size=size, replace=False)
    return sorted(distinct[i] for i in chosen)
