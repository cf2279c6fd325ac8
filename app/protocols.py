"""The two things the service needs from the rest of the project, as protocols.

`models.encoders.load_encoder` returns an `Encoder` (the protocol is the models
package's, re-exported here); `indexer.open_index` returns a `SearchIndex`. Tests pass
small in-process fakes with the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from app.schemas import Target
from models.encoders import Encoder

__all__ = ["Encoder", "Filters", "Hit", "Manifest", "Product", "SearchIndex"]

Filters = Mapping[str, str | Sequence[str]]


class Hit(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def score(self) -> float: ...


class Product(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def image(self) -> Path: ...

    @property
    def text(self) -> str: ...

    @property
    def attributes(self) -> Mapping[str, str]: ...


class Manifest(Protocol):
    @property
    def model_id(self) -> str: ...


@runtime_checkable
class SearchIndex(Protocol):
    @property
    def manifest(self) -> Manifest: ...

    @property
    def targets(self) -> tuple[Target, ...]:
        """What this index can search: "image", "text", and "product" when it has them."""
        ...

    def __len__(self) -> int: ...

    @property
    def hubness_targets(self) -> tuple[Target, ...]:
        """The targets whose searches `corrected=True` ranks by the hubness-corrected
        score (models.hubness); empty when the index has not measured hubness."""
        ...

    def search(
        self,
        vectors: np.ndarray,
        k: int,
        filters: Filters | None = None,
        *,
        target: Target,
        corrected: bool = False,
    ) -> list[list[Any]]:
        """vectors (Q, D) float32 -> per query, up to k Hits over the target, best first."""
        ...

    def similar(
        self, product_id: str, k: int, filters: Filters | None = None, *, target: Target
    ) -> list[Any]:
        """Up to k Hits nearest the product's own vector, without it and its duplicates."""
        ...

    def search_images(
        self, vectors: np.ndarray, k: int, filters: Filters | None = None
    ) -> list[list[Any]]:
        """vectors (Q, D) float32 -> per query, up to k Hits over product photos, best first."""
        ...

    def search_texts(
        self, vectors: np.ndarray, k: int, filters: Filters | None = None
    ) -> list[list[Any]]:
        """vectors (Q, D) float32 -> per query, up to k Hits over product titles, best first."""
        ...

    def get_products(self, ids: Sequence[str]) -> list[Any]:
        """Products (or None for an unknown id), in the order of `ids`."""
        ...

    def attribute_values(self) -> dict[str, list[str]]: ...

    def close(self) -> None: ...
