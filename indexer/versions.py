"""Writing one index version: the one writer build and update share.

Under the directory's write lock (`locked_for_writing`), a version is written into a
partial directory, its manifest last with the checksum of every other file, then
published (CURRENT moves) and older versions pruned (`publish_version`; see publish.py).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faiss

from indexer.cache import EmbeddingCache
from indexer.encode import EncodedProducts, Encoder, encode_products
from indexer.errors import IndexerError, StorageError
from indexer.faiss_index import IndexSpec, save_index
from indexer.manifest import (
    FORMAT_VERSION,
    IMAGES_DIR,
    IMAGES_INDEX,
    Manifest,
    checksum_files,
    utc_now,
    write_manifest,
)
from indexer.publish import (
    final_name,
    new_version_dir,
    prune_versions,
    publish,
    remove_failed,
    write_lock,
)
from indexer.skips import SkipLimit, check_skipped
from indexer.store import ProductRecord, ProductStore
from models.catalog import Product, SkippedRow
from models.images import DEFAULT_MAX_PIXELS

CACHE_DIR = "cache"


@dataclass(frozen=True, kw_only=True)
class PublishedCounts:
    """What a build or update encoded, skipped and changed, on either backend."""

    encoded_images: int = 0
    encoded_texts: int = 0
    skipped_rows: int = 0
    added: int = 0
    replaced: int = 0
    deleted: int = 0
    seconds: float = 0.0
    skipped: tuple[str, ...] = ()  # "id: why" for each skipped row


@dataclass(frozen=True)
class BuildReport(PublishedCounts):
    """What a build or update published in a FAISS index directory."""

    version_dir: Path
    manifest: Manifest


@contextmanager
def storage_errors(index_dir: Path) -> Iterator[None]:
    """A full disk, a missing permission or a read-only volume while a build or update
    writes index_dir: one StorageError naming the directory and the cause. Nothing is
    published then (CURRENT moves last), and the cache keeps what it committed."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise StorageError(
            f"cannot write the index directory {index_dir}: {exc.strerror or exc}{where}; "
            "nothing was published"
        ) from exc
    except sqlite3.Error as exc:
        raise StorageError(
            f"cannot write the index directory {index_dir}: {exc}; nothing was published"
        ) from exc


@contextmanager
def locked_for_writing(index_dir: Path) -> Iterator[None]:
    """Hold `index_dir` for one build or update: its write lock (IndexLockedError while
    another holds it), write failures as StorageError, unfinished versions of killed
    builds removed first."""
    with storage_errors(index_dir), write_lock(index_dir):
        remove_failed(index_dir)
        yield


def publish_version(index_dir: Path, write: Callable[[Path], Manifest]) -> tuple[Path, Manifest]:
    """Write a new version with `write(partial_dir) -> manifest`, publish it and prune
    the old ones; returns the published directory and its manifest. Call it within
    `locked_for_writing`; a failure publishes nothing and leaves no partial directory."""
    with partial_version(index_dir) as partial:
        manifest = write(partial)
        final = publish(index_dir, partial)
    prune_versions(index_dir)
    return final, manifest


@contextmanager
def partial_version(index_dir: Path) -> Iterator[Path]:
    """A fresh partial version directory, removed again unless published."""
    partial = new_version_dir(index_dir)
    try:
        yield partial
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)


def encode_with_cache(
    products: Sequence[Product],
    model: Encoder,
    cache_dir: Path,
    *,
    batch_size: int,
    progress: bool,
    max_image_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
) -> EncodedProducts:
    """workers: decoding processes (indexer.decode_pool); None: by size and cores."""
    with EmbeddingCache(cache_dir, model.model_id, model.embed_dim) as cache:
        return encode_products(
            products,
            model,
            cache,
            batch_size=batch_size,
            progress=progress,
            max_image_pixels=max_image_pixels,
            workers=workers,
        )


def kept_products(
    products: Sequence[Product],
    encoded: EncodedProducts,
    catalog_skipped: Sequence[SkippedRow],
    limit: SkipLimit,
) -> tuple[list[Product], tuple[str, ...]]:
    """The products whose photos were encoded, and every skipped row ("id: why") of the
    catalogue and of the encoding; TooManySkippedError past `limit`."""
    reasons = [f"{row.id or f'line {row.line}'}: {row.reason}" for row in catalog_skipped]
    reasons += [f"{product.id}: {product.reason}" for product in encoded.skipped]
    check_skipped(reasons, len(products) + len(catalog_skipped), limit)
    kept = [products[row] for row in encoded.kept]
    if products and not kept:
        raise IndexerError(f"no product left to index: {reasons[0]}")
    return kept, tuple(reasons)


def place_image(version_dir: Path, source: Path, sha: str, previous: Path | None) -> str:
    """Put an image under version_dir/images (hard link from the previous version when it
    is there, else copy); returns its path relative to version_dir."""
    relative = f"{IMAGES_DIR}/{sha}{source.suffix.lower()}"
    target = version_dir / relative
    if target.exists():
        return relative
    target.parent.mkdir(exist_ok=True)
    old = previous / relative if previous is not None else None
    if old is not None and old.is_file():
        try:
            os.link(old, target)
            return relative
        except OSError:
            pass  # another file system, or no hard links: copy instead
    shutil.copyfile(old if old is not None and old.is_file() else source, target)
    return relative


def product_records(
    products: Sequence[Product],
    nums: Iterable[int],
    shas: Sequence[str],
    *,
    version_dir: Path,
    copy_images: bool,
    previous: Path | None = None,
) -> list[ProductRecord]:
    """Store records for products and their nums; images copied in when copy_images."""
    records = []
    for product, num, sha in zip(products, nums, shas):
        image = place_image(version_dir, product.image, sha, previous) if copy_images else ""
        records.append(
            ProductRecord(
                int(num),
                product.id,
                product.text,
                image or str(product.image),
                sha,
                dict(product.attributes),
            )
        )
    return records


def finish_version(
    partial: Path,
    *,
    spec: IndexSpec,
    indices: Mapping[str, faiss.Index],
    store: ProductStore,
    model_id: str,
    images_copied: bool,
    product_weights: Sequence[float] | None,
) -> Manifest:
    """Save the indices ({file name: index}), close the store, check that every count
    agrees and write the manifest."""
    for name, index in indices.items():
        save_index(index, partial / name)
    count = store.count()
    store.close()
    totals = {name: int(index.ntotal) for name, index in indices.items()}
    if any(total != count for total in totals.values()):
        said = ", ".join(f"{total} in {name}" for name, total in totals.items())
        raise IndexerError(f"internal error: {said} but {count} products; nothing was published")
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        model_id=model_id,
        embed_dim=int(indices[IMAGES_INDEX].d),
        count=count,
        index_type=spec.factory,
        search_params=dict(spec.search_params),
        created_at=utc_now(),
        files=checksum_files(partial),
        version=final_name(partial),
        images_copied=images_copied,
        product_weights=list(product_weights) if product_weights is not None else None,
    )
    write_manifest(partial, manifest)
    return manifest
