"""Build an index directory from a catalogue, publishing atomically.

The build encodes first (through the embedding cache), then writes a new version beside
the published one and switches CURRENT to it; any failure before the switch leaves the
published index untouched.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np

from indexer.encode import DEFAULT_BATCH_SIZE, EncodedProducts, Encoder
from indexer.faiss_index import IndexSpec, check_spec, choose_index_spec, create_index
from indexer.manifest import IMAGES_INDEX, PRODUCTS_INDEX, STORE_NAME, TEXTS_INDEX, Manifest
from indexer.skips import DEFAULT_MAX_SKIPPED, parse_max_skipped
from indexer.store import ProductStore
from indexer.versions import (
    CACHE_DIR,
    BuildReport,
    encode_with_cache,
    finish_version,
    kept_products,
    locked_for_writing,
    product_records,
    publish_version,
)
from models.catalog import Product, read_catalog
from models.fusion import DEFAULT_PRODUCT_WEIGHTS, ProductWeights, check_weights, fuse
from models.images import DEFAULT_MAX_PIXELS


def _write_version(
    partial: Path,
    *,
    spec: IndexSpec,
    products: Sequence[Product],
    encoded: EncodedProducts,
    model_id: str,
    copy_images: bool,
    product_weights: ProductWeights,
) -> Manifest:
    """Write store and indices of products numbered 0..N-1 into the partial version."""
    nums = np.arange(len(products), dtype=np.int64)
    store = ProductStore.create(partial / STORE_NAME)
    store.upsert(
        product_records(
            products, nums, encoded.image_sha256, version_dir=partial, copy_images=copy_images
        )
    )
    fused = fuse(encoded.image_vectors, encoded.text_vectors, product_weights)
    indices = {
        IMAGES_INDEX: create_index(spec, encoded.image_vectors, nums),
        TEXTS_INDEX: create_index(spec, encoded.text_vectors, nums),
        PRODUCTS_INDEX: create_index(spec, fused, nums),
    }
    return finish_version(
        partial,
        spec=spec,
        indices=indices,
        store=store,
        model_id=model_id,
        images_copied=copy_images,
        product_weights=product_weights,
    )


def build_index(
    catalog_path: str | Path,
    model: Encoder,
    out_dir: str | Path,
    *,
    index_type: str | None = None,
    search_params: dict[str, int] | None = None,
    copy_images: bool = False,
    product_weights: Sequence[float] = DEFAULT_PRODUCT_WEIGHTS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    max_skipped: str | int = DEFAULT_MAX_SKIPPED,
    max_image_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
) -> BuildReport:
    """Encode every product of the catalogue and publish a new version in out_dir.

    index_type: a FAISS factory string (default: chosen by catalogue size);
    copy_images: copy product images into the version, for a self-contained index;
    product_weights: (w_image, w_text) of the product vectors (models.fusion.fuse),
    recorded in the manifest so that updates fuse new products the same way;
    max_skipped: how many rows (25) or what share of them ("1%") may be skipped, as
    malformed or for a photo that is missing, unreadable or over `max_image_pixels`,
    before the build fails and publishes nothing;
    workers: processes decoding photos while the model encodes (None: by catalogue size
    and cores; 0: decode in this process).
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    weights = check_weights(product_weights)  # before hours of encoding
    limit = parse_max_skipped(max_skipped)
    catalog = read_catalog(catalog_path)
    products = catalog.products
    spec = choose_index_spec(len(products), index_type)
    if search_params:
        spec = IndexSpec(spec.factory, {**spec.search_params, **search_params})
    check_spec(spec, model.embed_dim, len(products))
    with locked_for_writing(out_dir):
        cache = Path(cache_dir) if cache_dir is not None else out_dir / CACHE_DIR
        encoded = encode_with_cache(
            products,
            model,
            cache,
            batch_size=batch_size,
            progress=progress,
            max_image_pixels=max_image_pixels,
            workers=workers,
        )
        kept, skipped = kept_products(products, encoded, catalog.skipped, limit)
        check_spec(spec, model.embed_dim, len(kept))
        final, manifest = publish_version(
            out_dir,
            partial(
                _write_version,
                spec=spec,
                products=kept,
                encoded=encoded,
                model_id=model.model_id,
                copy_images=copy_images,
                product_weights=weights,
            ),
        )
    return BuildReport(
        final,
        manifest,
        encoded_images=encoded.encoded_images,
        encoded_texts=encoded.encoded_texts,
        skipped_rows=len(skipped),
        added=len(kept),
        seconds=time.perf_counter() - started,
        skipped=skipped,
    )
