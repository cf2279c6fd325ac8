"""Open a published index and search it: the API the service uses.

index = open_index("var/index", device="auto", expected_model_id=model.model_id)
hits = index.search(model.encode_texts(["red dress"]), 10, {"gender": "Women"}, target="product")
similar = index.similar("15970", 10, target="image")
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self

import faiss
import numpy as np

from indexer import knn
from indexer.errors import (
    IndexCorruptError,
    InvalidQueryError,
    TargetUnavailableError,
    UnknownProductError,
)
from indexer.faiss_index import (
    apply_search_params,
    enable_reconstruct,
    load_index,
    reconstruct,
)
from indexer.filters import AttributeIndex, Filters
from indexer.gpu import Placement, choose_placement, gpu_count, to_placement
from indexer.manifest import (
    INDEX_FILES,
    STORE_NAME,
    TARGETS,
    Manifest,
    Target,
    check_model,
)
from indexer.publish import check_files, read_version
from indexer.scan import FlatScan, Scan, check_scan, is_flat
from indexer.similar import DuplicateKeys
from indexer.store import ProductRecord, ProductStore
from models.catalog import Product
from models.hubness import DEFAULT_ALPHA, DEFAULT_K, hubness

# A hubness-corrected query re-ranks this many candidates beyond its k: the correction
# moves scores by at most alpha * (the spread of hubness), a few hundredths.
HUBNESS_CANDIDATES = 100
# Which targets' hubness each kind of query is corrected by: photos and product vectors
# are measured against a bank of text queries, titles against a bank of photos.
CORRECTED_TARGETS: dict[Literal["text", "image"], tuple[Target, ...]] = {
    "text": ("image", "product"),
    "image": ("text",),
}


@dataclass(frozen=True)
class Hit:
    """One search result: a product id and its inner-product score (cosine similarity)."""

    id: str
    score: float


class IndexAPI:
    """What ProductIndex and MilvusIndex share: the per-target shortcuts of `search`,
    the query check, and `with` closing the index. Subclasses define `search`, `close`
    and `manifest`."""

    manifest: Manifest

    def search(
        self,
        vectors: np.ndarray,
        k: int,
        filters: Filters | None = None,
        *,
        target: Target,
        corrected: bool = False,
    ) -> list[list[Hit]]:
        raise NotImplementedError

    @property
    def hubness_targets(self) -> tuple[Target, ...]:
        """The targets whose searches `corrected=True` corrects for hubness; none here."""
        return ()

    def close(self) -> None:
        raise NotImplementedError

    def _queries(self, vectors: np.ndarray, k: int) -> np.ndarray:
        array = np.asarray(vectors)
        if array.ndim != 2 or array.shape[1] != self.manifest.embed_dim:
            raise InvalidQueryError(
                f"query vectors must have shape (Q, {self.manifest.embed_dim}), got {array.shape}"
            )
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidQueryError(f"k must be a positive integer, got {k!r}")
        return np.ascontiguousarray(array, dtype=np.float32)

    def search_images(
        self, vectors: np.ndarray, k: int, filters: Filters | None = None
    ) -> list[list[Hit]]:
        """`search(..., target="image")`: over product photos."""
        return self.search(vectors, k, filters, target="image")

    def search_texts(
        self, vectors: np.ndarray, k: int, filters: Filters | None = None
    ) -> list[list[Hit]]:
        """`search(..., target="text")`: over product titles."""
        return self.search(vectors, k, filters, target="text")

    def search_products(
        self, vectors: np.ndarray, k: int, filters: Filters | None = None
    ) -> list[list[Hit]]:
        """`search(..., target="product")`: over product vectors (photo and title fused)."""
        return self.search(vectors, k, filters, target="product")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Side:
    """One target's FAISS index, where it is searched, and how to reconstruct vectors."""

    def __init__(self, path: Path, manifest: Manifest, placement: Placement, scan: Scan) -> None:
        self.path = path
        self.params = dict(manifest.search_params)
        cpu = load_index(path)
        apply_search_params(cpu, self.params)  # GPU clones keep nprobe / efSearch
        self.index, self.placement = to_placement(cpu, placement)
        if self.placement == "cpu":
            enable_reconstruct(self.index)
        # Exact CPU indices are scanned as one matrix product per batch (indexer.scan).
        use_scan = scan != "faiss" and self.placement == "cpu" and is_flat(self.index)
        self.scan = FlatScan(self.index, scan) if use_scan else None  # type: ignore[arg-type]
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


class ProductIndex(IndexAPI):
    """A loaded index version: a FAISS index per target, the product store and filters."""

    def __init__(
        self,
        version_dir: Path,
        manifest: Manifest,
        placement: Placement,
        threads: int | None = 1,
        scan: Scan = "faiss",
    ) -> None:
        self.version_dir = version_dir
        self.manifest = manifest
        self.threads = threads
        self.scan = check_scan(scan)
        self._store = ProductStore.open(version_dir / STORE_NAME)
        try:
            self._sides: dict[Target, _Side] = {
                target: _Side(version_dir / INDEX_FILES[target], manifest, placement, scan)
                for target in manifest.targets
            }
            self._nums, self._ids = self._store.id_table()
            records = list(self._store.records())
            self._attributes = AttributeIndex.from_records((r.num, r.attributes) for r in records)
            self._duplicates = DuplicateKeys.from_records(records)
            self._check_counts()
            self._hubness: dict[Target, np.ndarray] = {}
            self._hubness_alpha = 0.0
        except BaseException:
            self._store.close()
            raise

    @property
    def placement(self) -> Placement:
        """Where the indices are searched: "cpu" or "gpu"."""
        return self._sides["image"].placement

    @property
    def targets(self) -> tuple[Target, ...]:
        """The targets this index can search: image, text, and product when it was built
        with product vectors."""
        return tuple(self._sides)

    def _check_counts(self) -> None:
        counts = {"manifest": self.manifest.count, STORE_NAME: len(self._nums)}
        counts.update({side.path.name: side.index.ntotal for side in self._sides.values()})
        if len(set(counts.values())) != 1:
            said = ", ".join(f"{name}: {count}" for name, count in counts.items())
            raise IndexCorruptError(
                f"the files of {self.version_dir} disagree on the product count ({said}); "
                "rebuild the index"
            )
        dims = {self.manifest.embed_dim, *(side.index.d for side in self._sides.values())}
        if len(dims) != 1:
            raise IndexCorruptError(
                f"the files of {self.version_dir} disagree on the embedding size: {sorted(dims)}"
            )

    def __len__(self) -> int:
        return len(self._nums)

    def _side(self, target: str) -> _Side:
        side = self._sides.get(target)  # type: ignore[call-overload]  # any str: checked here
        if side is not None:
            return side
        if target == "product":
            raise TargetUnavailableError(
                "this index has no product vectors (it was built before they existed); "
                "rebuild it with `fashion-retrieval index build` to search target 'product'"
            )
        raise InvalidQueryError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")

    def set_hubness(
        self,
        bank: np.ndarray | None,
        *,
        photo_bank: np.ndarray | None = None,
        k: int = DEFAULT_K,
        alpha: float = DEFAULT_ALPHA,
    ) -> None:
        """Measure every product's hubness (models.hubness): photos and product vectors
        against `bank`, (M, D) normalised text-query embeddings, and titles against
        `photo_bank`, normalised photo embeddings (CORRECTED_TARGETS). From then on
        searches with `corrected=True` rank those targets by cosine - alpha * hubness.
        alpha 0 or an empty bank: no correction from it. Seconds for a catalogue of tens
        of thousands."""
        if alpha < 0:
            raise ValueError(f"alpha must not be negative, got {alpha}")
        banks = {"text": bank, "image": photo_bank}
        measured: dict[Target, np.ndarray] = {}
        for kind, targets in CORRECTED_TARGETS.items():
            vectors = banks[kind]
            if alpha == 0 or vectors is None or len(vectors) == 0:
                continue
            vectors = np.asarray(vectors, dtype=np.float32)
            for target in targets:
                if target in self._sides:
                    side = self._sides[target]
                    measured[target] = hubness(side.vectors_of(self._nums), vectors, k)
        self._hubness, self._hubness_alpha = measured, float(alpha) if measured else 0.0

    @property
    def hubness_targets(self) -> tuple[Target, ...]:
        return tuple(self._hubness)

    def _search(
        self, side: _Side, vectors: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> list[list[Hit]]:
        return [
            [Hit(self._id_of(num), score) for num, score in row]
            for row in self._search_nums(side, vectors, k, allowed)
        ]

    def _search_nums(
        self, side: _Side, vectors: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> list[list[tuple[int, float]]]:
        queries = self._queries(vectors, k)
        if side.scan is not None:
            return side.scan.search(queries, int(k), allowed)
        with knn.faiss_threads(self.threads):
            return knn.search(
                side.index,
                queries,
                int(k),
                params=side.params,
                allowed=allowed,
                vectors_of=side.vectors_of,
                all_ids=self._nums,
                on_gpu=side.placement == "gpu",
            )

    def _corrected_search(
        self, side: _Side, vectors: np.ndarray, k: int, allowed: np.ndarray | None, target: Target
    ) -> list[list[Hit]]:
        """The k best of k + HUBNESS_CANDIDATES candidates by cosine - alpha * hubness;
        a Hit's score is that corrected score."""
        bias = self._hubness_alpha * self._hubness[target]
        out: list[list[Hit]] = []
        for row in self._search_nums(side, vectors, k + HUBNESS_CANDIDATES, allowed):
            if not row:
                out.append([])
                continue
            nums = np.fromiter((num for num, _ in row), dtype=np.int64, count=len(row))
            scores = np.fromiter((score for _, score in row), dtype=np.float32, count=len(row))
            scores -= bias[np.searchsorted(self._nums, nums)]
            best = np.argsort(-scores, kind="stable")[:k]
            out.append([Hit(self._id_of(int(nums[i])), float(scores[i])) for i in best])
        return out

    def _id_of(self, num: int) -> str:
        position = int(np.searchsorted(self._nums, num))
        if position >= len(self._nums) or self._nums[position] != num:
            raise IndexCorruptError(
                f"the index returned product number {num}, unknown to the store"
            )
        return self._ids[position]

    def search(
        self,
        vectors: np.ndarray,
        k: int,
        filters: Filters | None = None,
        *,
        target: Target,
        corrected: bool = False,
    ) -> list[list[Hit]]:
        """vectors (Q, D) float32 -> per query, min(k, matching products) Hits over the
        target's vectors (product photos, titles, or product vectors), best first.

        corrected: rank by the hubness-corrected score where `set_hubness` measured the
        target (`hubness_targets`); elsewhere it changes nothing. The caller corrects a
        query only over the targets of its kind (CORRECTED_TARGETS).
        TargetUnavailableError for "product" on an index built without product vectors.
        """
        side = self._side(target)
        allowed = self._attributes.allowed(filters)
        if corrected and target in self._hubness:
            return self._corrected_search(side, vectors, k, allowed, target)
        return self._search(side, vectors, k, allowed)

    def similar(
        self,
        product_id: str,
        k: int,
        filters: Filters | None = None,
        *,
        target: Target = "image",
    ) -> list[Hit]:
        """min(k, candidates) products nearest to product_id's own vector of target, best
        first, leaving out the product and its exact duplicates (indexer.similar).

        UnknownProductError for an id the index does not hold.
        """
        side = self._side(target)
        nums = self._store.nums_of([product_id])
        if product_id not in nums:
            raise UnknownProductError(f"no product with id {product_id!r} in the index")
        num = nums[product_id]
        excluded = self._duplicates.excluded(num, self._sides["image"].vectors_of)
        allowed = self._attributes.allowed(filters)
        candidates = np.setdiff1d(self._nums if allowed is None else allowed, excluded)
        query = side.vectors_of(np.asarray([num], dtype=np.int64))
        return self._search(side, query, k, candidates)[0]

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


def open_index(
    path: str | Path,
    device: object = "auto",
    *,
    expected_model_id: str | None = None,
    verify: bool = True,
    threads: int | None = 1,
    scan: Scan = "faiss",
) -> ProductIndex:
    """Load the version CURRENT points to (or the version directory `path` itself).

    device: "auto" (all GPUs when FAISS reports any), "cpu" or "cuda".
    expected_model_id: raise ModelMismatchError when the index was built with another model.
    verify: check every file's sha256 against the manifest first (IndexCorruptError).
    threads: CPU threads per search call (1 suits a service answering one query per
    request from several threads; None: FAISS's default, every core).
    scan: how exact (Flat) indices are searched on the CPU: "faiss" (FAISS, query by
    query), "float32" (one exact matrix product per batch of queries), "float16" (half
    the bytes, a short list re-scored exactly) or "pca" (the first principal components
    in float16, a longer short list re-scored exactly); see indexer.scan.
    """
    placement = choose_placement(device, gpu_count())
    version_dir, manifest = read_version(Path(path), verify=False)
    check_model(manifest.model_id, expected_model_id, f"at {path}")
    if verify:  # after the model check: a mismatch is refused without reading every file
        check_files(version_dir, manifest)
    return ProductIndex(version_dir, manifest, placement, threads, check_scan(scan))
