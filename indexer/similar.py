""" "More like this": which products to leave out when looking for products similar to one.

A product is never similar to itself, nor to its exact duplicates: products with the
same photo bytes, or with the same title and (all but) the same photo embedding (the
same picture saved again). Catalogues hold such copies, and a shopper asking for more
like a product does not want it back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from indexer.store import ProductRecord

# Cosine of two photo embeddings above which two products of one title are one picture:
# a re-saved JPEG moves the embedding far less than a different photo of the same model.
SAME_PHOTO_MIN_COSINE = 0.999

Reconstruct = Callable[[np.ndarray], np.ndarray]  # nums (M,) int64 -> vectors (M, D) float32


def _key(text: str) -> int:
    """A 64-bit key: the first 8 bytes of the sha256 (collisions: ~1e-10 at 1M products)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


@dataclass(frozen=True)
class DuplicateKeys:
    """Photo and title keys of every product, for finding duplicates without a store scan."""

    nums: np.ndarray  # (N,) int64
    photos: np.ndarray  # (N,) uint64, a key of the photo's sha256
    titles: np.ndarray  # (N,) uint64, a key of the title

    @classmethod
    def from_records(cls, records: Iterable[ProductRecord]) -> DuplicateKeys:
        nums, photos, titles = [], [], []
        for record in records:
            nums.append(record.num)
            photos.append(_key(record.image_sha256))
            titles.append(_key(record.text))
        return cls(
            np.asarray(nums, dtype=np.int64),
            np.asarray(photos, dtype=np.uint64),
            np.asarray(titles, dtype=np.uint64),
        )

    def excluded(self, num: int, image_vectors_of: Reconstruct) -> np.ndarray:
        """Sorted nums (M,) int64 of product `num` and its exact duplicates."""
        row = np.flatnonzero(self.nums == num)
        if len(row) == 0:
            return np.asarray([num], dtype=np.int64)
        photo, title = self.photos[row[0]], self.titles[row[0]]
        same_photo = self.nums[self.photos == photo]
        same_title = self.nums[(self.titles == title) & (self.photos != photo)]
        if len(same_title):
            own = image_vectors_of(np.asarray([num], dtype=np.int64))[0]
            cosines = image_vectors_of(same_title) @ own
            same_title = same_title[cosines >= SAME_PHOTO_MIN_COSINE]
        return np.unique(np.concatenate([[num], same_photo, same_title]).astype(np.int64))
