"""Open a published index and search it: the API the service uses.

index = open_index("var/index", device="auto", expected_model_id=model.model_id)
hits = index.search_texts(model.encode_texts(["red dress"]), k=10, filters={"gender": "Women"})
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import faiss
import numpy as np

from indexer import knn
from indexer.errors import IndexCorruptError, InvalidQueryError, ModelMismatchError
from indexer.faiss_index import (
    apply_search_params,
    enable_reconstruct,
    load_index,
    reconstruct,
)
from indexer.filters import AttributeIndex, Filters
from indexer.gpu import Placement, choose_placement, gpu_count, to_placement
from indexer.manifest import (
    IMAGES_INDEX,
    STORE_NAME,
    TEXTS_INDEX,
    Manifest,
    checksum_problems,
    read_manifest,
)
from indexer.publish import resolve_version_dir
from indexer.store import ProductRecord, ProductStore
from models.catalog import Product


@dataclass(frozen=True)
class Hit:
    """One search result: a product id and its inner-product score (cosine similarity)."""

    id: str
    score: float


class _Side:
    """One FAISS index (images or texts), where it is searched, and how to reconstruct."""

    def __init__(self, path: Path, manifest: Manifest, placement: Placement) -> None:
        self.path = path
        self.params = dict(manifest.search_params)
        cpu = load_index(path)
        apply_search_params(cpu, self.params)  # GPU clones keep nprobe / efSearch
        self.index, self.placement = to_placement(cpu, placement)
        if self.placement == "cpu":
            enable_reconstruct(self.index)
        self._cpu_copy: faiss.Index | None = None
        self._lock = threading.Lock()

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """(M, D) stored vectors; GPU types that cannot reconstruct use a CPU copy from disk."""
        if self.placement == "cpu":
            return reconstruct(self.index, ids)
        try:
            return reconstruct(self.index, ids)
        except RuntimeError:
            with self._lock:
                if self._cpu_copy is None:
                    self._cpu_copy = load_index(self.path)
                    enable_reconstruct(self._cpu_copy)
            return reconstruct(self._cpu_copy, ids)


class ProductIndex:
    """A loaded index version: two FAISS indices, the product store and attribute filters."""

    def __init__(
        self,
        version_dir: Path,
        manifest: Manifest,
        placement: Placement,
        threads: int | None = 1,
    ) -> None:
        self.version_dir = version_dir
        self.manifest = manifest
        self.threads = threads
        self._store = ProductStore.open(version_dir / STORE_NAME)
        try:
            self._images = _Side(version_dir / IMAGES_INDEX, manifest, placement)
            self._texts = _Side(version_dir / TEXTS_INDEX, manifest, placement)
            self._nums, self._ids = self._store.id_table()
            self._attributes = AttributeIndex.from_records(
                (record.num, record.attributes) for record in self._store.records()
            )
            self._check_counts()
        except BaseException:
            self._store.close()
            raise

    @property
    def placement(self) -> Placement:
        """Where the indices are searched: "cpu" or "gpu"."""
        return self._images.placement

    def _check_counts(self) -> None:
        counts = {
            "manifest": self.manifest.count,
            IMAGES_INDEX: self._images.index.ntotal,
            TEXTS_INDEX: self._texts.index.ntotal,
            STORE_NAME: len(self._nums),
        }
        if len(set(counts.values())) != 1:
            said = ", ".join(f"{name}: {count}" for name, count in counts.items())
            raise IndexCorruptError(
                f"the files of {self.version_dir} disagree on the product count ({said}); "
                "rebuild the index"
            )
        dims = {self.manifest.embed_dim, self._images.index.d, self._texts.index.d}
        if len(dims) != 1:
            raise IndexCorruptError(
                f"the files of {self.version_dir} disagree on the embedding size: {sorted(dims)}"
            )

    def __len__(self) -> int:
        return len(self._nums)

    def _queries(self, vectors: np.ndarray, k: int) -> np.ndarray:
        array = np.asarray(vectors)
        if array.ndim != 2 or array.shape[1] != self.manifest.embed_dim:
            raise InvalidQueryError(
                f"query vectors must have shape (Q, {self.manifest.embed_dim}), got {array.shape}"
            )
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidQueryError(f"k must be a positive integer, got {k!r}")
        return np.ascontiguousarray(array, dtype=np.float32)

    def _search(
        self, side: _Side, vectors: np.ndarray, k: int, filters: Filters | None
    ) -> list[list[Hit]]:
        queries = self._queries(vectors, k)
        allowed = self._attributes.allowed(filters)
        with knn.faiss_threads(self.threads):
            rows = knn.search(
                side.index,
                queries,
                int(k),
                params=side.params,
                allowed=allowed,
                vectors_of=side.vectors_of,
                all_ids=self._nums,
                on_gpu=side.placement == "gpu",
            )
        return [[Hit(self._id_of(num), score) for num, score in row] for row in rows]

    def _id_of(self, num: int) -> str:
        position = int(np.searchsorted(self._nums, num))
        if position >= len(self._nums) or self._nums[position] != num:
            raise IndexCorruptError(
                f"the index returned product number {num}, unknown to the store"
            )
        return self._ids[position]

    def search_images(
        self, vectors: np.ndarray, k: int, filters: Filters | None = None
    ) -> list[list[Hit]]:
        """vectors (Q, D) float32 -> per query, min(k, matching products) Hits over product
        images, best first."""
        return self._search(self._images, vectors, k, filters)

    def search_texts(
        self, vectors: np.ndarray, k: int, filters: Filters | None = None
    ) -> list[list[Hit]]:
        """vectors (Q, D) float32 -> per query, min(k, matching products) Hits over product
        texts, best first."""
        return self._search(self._texts, vectors, k, filters)

    def get_products(self, ids: Sequence[str]) -> list[Product | None]:
        """Products in the order of ids; None for an id the index does not hold."""
        return [self._product(record) for record in self._store.get(list(ids))]

    def _product(self, record: ProductRecord | None) -> Product | None:
        if record is None:
            return None
        image = Path(record.image)
        if not image.is_absolute():
            image = self.version_dir / image  # copied into the index with --copy-images
        return Product(record.id, image, record.text, dict(record.attributes))

    def attribute_values(self) -> dict[str, list[str]]:
        """{attribute: sorted distinct values}, for filter menus."""
        return self._attributes.values()

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_index(
    path: str | Path,
    device: object = "auto",
    *,
    expected_model_id: str | None = None,
    verify: bool = True,
    threads: int | None = 1,
) -> ProductIndex:
    """Load the version CURRENT points to (or the version directory `path` itself).

    device: "auto" (all GPUs when FAISS reports any), "cpu" or "cuda".
    expected_model_id: raise ModelMismatchError when the index was built with another model.
    verify: check every file's sha256 against the manifest first (IndexCorruptError).
    threads: CPU threads per search call (1 suits a service answering one query per
    request from several threads; None: FAISS's default, every core).
    """
    placement = choose_placement(device, gpu_count())
    version_dir = resolve_version_dir(Path(path))
    manifest = read_manifest(version_dir)
    if expected_model_id is not None and manifest.model_id != expected_model_id:
        raise ModelMismatchError(
            f"the index at {path} was built with model {manifest.model_id}, but the loaded "
            f"model is {expected_model_id}; rebuild the index with this model "
            "(fashion-retrieval index build) or load the model it was built with"
        )
    if verify:
        problems = checksum_problems(version_dir, manifest)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise IndexCorruptError(f"{problems[0]}{more}; rebuild the index")
    return ProductIndex(version_dir, manifest, placement, threads)
