"""Update a published index: add or replace products, delete others, publish atomically."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from indexer.encode import DEFAULT_BATCH_SIZE, EncodedProducts, Encoder
from indexer.errors import (
    IndexCorruptError,
    IndexerError,
    IndexNotFoundError,
    UnknownProductError,
)
from indexer.faiss_index import IndexSpec, add_vectors, load_index, remove_vectors
from indexer.manifest import (
    IMAGES_INDEX,
    PRODUCTS_INDEX,
    STORE_NAME,
    TEXTS_INDEX,
    Manifest,
    check_model,
)
from indexer.publish import CURRENT_NAME, read_version
from indexer.skips import DEFAULT_MAX_SKIPPED, parse_max_skipped
from indexer.store import ProductStore
from indexer.versions import (
    CACHE_DIR,
    BuildReport,
    encode_with_cache,
    finish_version,
    kept_products,
    locked_for_writing,
    place_image,
    product_records,
    publish_version,
)
from models.catalog import Catalog, Product, read_catalog
from models.fusion import fuse
from models.images import DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class _UpdatePlan:
    nums: np.ndarray  # (P,) int64: the num of each catalogue product, old or new
    remove: np.ndarray  # (R,) int64: nums whose vectors go (replaced and deleted)
    replaced: int
    deleted: int


def _plan_update(
    store: ProductStore, products: Sequence[Product], delete_ids: Sequence[str]
) -> _UpdatePlan:
    """Give each product its num (kept when the id is known) and list what to remove."""
    to_delete = store.nums_of(delete_ids)
    unknown = [product_id for product_id in delete_ids if product_id not in to_delete]
    if unknown:
        raise unknown_deletions_error(unknown)
    existing = store.nums_of([product.id for product in products])
    next_num = store.next_num()
    nums = []
    for product in products:
        if product.id in existing:
            nums.append(existing[product.id])
        else:
            nums.append(next_num)
            next_num += 1
    remove = np.asarray([*existing.values(), *to_delete.values()], dtype=np.int64)
    return _UpdatePlan(np.asarray(nums, dtype=np.int64), remove, len(existing), len(to_delete))


def _checked_current(index_dir: Path) -> tuple[Path, Manifest]:
    """The published version to update, after checking its files against the manifest."""
    if not (index_dir / CURRENT_NAME).is_file():
        raise IndexNotFoundError(
            f"no published index in {index_dir} to update: build one with `index build`"
        )
    try:
        return read_version(index_dir, verify=True)
    except IndexCorruptError as exc:
        raise IndexCorruptError(f"cannot update a damaged index: {exc}") from exc


def _carry_images(partial: Path, previous: Path, store: ProductStore) -> None:
    """Link (or copy) the copied images of the products kept from the previous version."""
    for record in store.records():
        if not Path(record.image).is_absolute():
            place_image(partial, previous / record.image, record.image_sha256, previous)


def _updated_index(
    path: Path, spec: IndexSpec, plan: _UpdatePlan, vectors: np.ndarray | None
) -> faiss.Index:
    index = remove_vectors(load_index(path), spec, plan.remove)
    if vectors is not None:
        add_vectors(index, plan.nums, vectors)
    return index


def unknown_deletions_error(unknown: Sequence[str]) -> UnknownProductError:
    """The error for ids to delete that the index does not hold (the first five shown)."""
    shown = ", ".join(repr(i) for i in unknown[:5])
    more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
    return UnknownProductError(
        f"cannot delete {len(unknown)} product(s) the index does not hold: {shown}{more}"
    )


def read_update_request(
    model: Encoder | None, catalog_path: str | Path | None, delete_ids: Iterable[str]
) -> tuple[Catalog | None, list[Product], list[str]]:
    """An update's checked request, before the index is touched: (the catalogue or None,
    its products, the distinct ids to delete). IndexerError for nothing to do, a
    catalogue without a model, or an id both updated and deleted."""
    deletions = list(dict.fromkeys(str(i) for i in delete_ids))
    if catalog_path is None and not deletions:
        raise IndexerError(
            "nothing to update: give a catalogue of products to add or replace, or ids to delete"
        )
    if catalog_path is not None and model is None:
        raise IndexerError("updating from a catalogue needs the model to encode it")
    catalog = read_catalog(catalog_path) if catalog_path is not None else None
    products = catalog.products if catalog is not None else []
    both = sorted({p.id for p in products} & set(deletions))
    if both:
        raise IndexerError(f"ids both updated and deleted: {', '.join(both[:5])}")
    return catalog, products, deletions


def check_update_model(model: Encoder | None, old: Manifest, where: str) -> None:
    """ModelMismatchError unless model (when given) built the index described by old."""
    check_model(old.model_id, model.model_id if model is not None else None, where)


def _added_vectors(old: Manifest, encoded: EncodedProducts | None) -> dict[str, np.ndarray | None]:
    """{index file: vectors (P, D) to add, or None} for every index file the version has.

    An index built before product vectors existed has no products index and gets none
    (`index build` adds it); otherwise new products are fused with the build's weights.
    """
    has_products = old.product_weights is not None
    names = [IMAGES_INDEX, TEXTS_INDEX, *([PRODUCTS_INDEX] if has_products else [])]
    if encoded is None:
        return dict.fromkeys(names)
    added: dict[str, np.ndarray | None] = {
        IMAGES_INDEX: encoded.image_vectors,
        TEXTS_INDEX: encoded.text_vectors,
    }
    if old.product_weights is not None:
        added[PRODUCTS_INDEX] = fuse(
            encoded.image_vectors, encoded.text_vectors, old.product_weights
        )
    return added


def _write_updated(
    partial: Path,
    previous: Path,
    old: Manifest,
    plan: _UpdatePlan,
    products: Sequence[Product],
    encoded: EncodedProducts | None,
) -> Manifest:
    """Write the previous version with the plan applied into the partial directory."""
    spec = IndexSpec(old.index_type, dict(old.search_params))
    indices = {
        name: _updated_index(previous / name, spec, plan, added)
        for name, added in _added_vectors(old, encoded).items()
    }
    shutil.copyfile(previous / STORE_NAME, partial / STORE_NAME)
    store = ProductStore.open(partial / STORE_NAME, readonly=False)
    store.delete(plan.remove)
    if encoded is not None:
        store.upsert(
            product_records(
                products,
                plan.nums,
                encoded.image_sha256,
                version_dir=partial,
                copy_images=old.images_copied,
                previous=previous,
            )
        )
    store.compact()
    if old.images_copied:
        _carry_images(partial, previous, store)
    return finish_version(
        partial,
        spec=spec,
        indices=indices,
        store=store,
        model_id=old.model_id,
        images_copied=old.images_copied,
        product_weights=old.product_weights,
    )


def update_index(
    index_dir: str | Path,
    model: Encoder | None = None,
    catalog_path: str | Path | None = None,
    delete_ids: Iterable[str] = (),
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    max_skipped: str | int = DEFAULT_MAX_SKIPPED,
    max_image_pixels: int = DEFAULT_MAX_PIXELS,
) -> BuildReport:
    """Add or replace the catalogue's products and delete delete_ids, as a new version.

    The model must be the one the index was built with (ModelMismatchError otherwise);
    it is only needed when a catalogue is given. Rows are skipped as in `build_index`
    (a product whose photo is skipped keeps its previous version, if any).
    """
    started = time.perf_counter()
    limit = parse_max_skipped(max_skipped)
    index_dir = Path(index_dir)
    catalog, products, deletions = read_update_request(model, catalog_path, delete_ids)
    with locked_for_writing(index_dir):
        previous, old = _checked_current(index_dir)
        check_update_model(model, old, f"at {index_dir}")
        with ProductStore.open(previous / STORE_NAME) as store:
            plan = _plan_update(store, products, deletions)
        encoded = None
        skipped: tuple[str, ...] = ()
        if products and model is not None:
            cache = Path(cache_dir) if cache_dir is not None else index_dir / CACHE_DIR
            encoded = encode_with_cache(
                products,
                model,
                cache,
                batch_size=batch_size,
                progress=progress,
                max_image_pixels=max_image_pixels,
            )
            assert catalog is not None
            products, skipped = kept_products(products, encoded, catalog.skipped, limit)
            with ProductStore.open(previous / STORE_NAME) as store:
                plan = _plan_update(store, products, deletions)  # without the skipped
        final, manifest = publish_version(
            index_dir,
            lambda version_dir: _write_updated(version_dir, previous, old, plan, products, encoded),
        )
    return BuildReport(
        final,
        manifest,
        encoded_images=encoded.encoded_images if encoded else 0,
        encoded_texts=encoded.encoded_texts if encoded else 0,
        skipped_rows=len(skipped),
        added=len(products) - plan.replaced,
        replaced=plan.replaced,
        deleted=plan.deleted,
        seconds=time.perf_counter() - started,
        skipped=skipped,
    )
