"""Update a Milvus index in place: upsert and delete on the published collection.

Unlike a build, an update does not copy the catalogue into a new version (at tens of
millions of products that copy is the expensive part); it writes the published
collection, batch by batch. What a reader sees meanwhile: each product is either its old
row or its new one, never a mix (an upsert replaces a row whole), but products change
one batch of 1,000 after another, as Milvus makes the writes visible (bounded
consistency: within seconds). The manifest (count, attribute values) is rewritten last;
replicas read it when they open or reload the index. An update killed part way leaves
some products changed: run it again (upserts and deletes by id are idempotent).

Attribute columns are fixed when a version is built: an update may bring any new value
of a known attribute (it is filterable at once; the manifest lists it after the update),
but an attribute name the collection has no column for is refused before anything is
written, with the advice to rebuild (`index build --backend milvus`). An index built
before attribute columns keeps its JSON attributes, written and filtered as before.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from indexer.encode import DEFAULT_BATCH_SIZE, Encoder
from indexer.manifest import Manifest, utc_now
from indexer.milvus.build import (
    MilvusBuildReport,
    attribute_facets,
    check_attribute_names,
    check_lengths,
    count_rows,
    default_cache_dir,
    product_rows,
    write_rows,
)
from indexer.milvus.connection import MilvusLocation, connect, milvus_errors
from indexer.milvus.expressions import ids_expression
from indexer.milvus.schema import ID_FIELD, MAX_FACET_VALUES, columns_of, manifest_property
from indexer.milvus.versions import published
from indexer.skips import DEFAULT_MAX_SKIPPED, parse_max_skipped
from indexer.update import check_update_model, read_update_request, unknown_deletions_error
from indexer.versions import encode_with_cache, kept_products
from models.fusion import fuse
from models.images import DEFAULT_MAX_PIXELS

_LOOKUP = 1_000  # ids per existence query


def existing_ids(
    client: Any, location: MilvusLocation, collection: str, ids: Sequence[str]
) -> set[str]:
    """Which of `ids` the collection holds."""
    found: set[str] = set()
    for start in range(0, len(ids), _LOOKUP):
        chunk = list(ids[start : start + _LOOKUP])
        with milvus_errors(location, f"looking up products in {collection}"):
            rows = client.query(
                collection,
                filter=ids_expression(chunk),
                output_fields=[ID_FIELD],
                limit=len(chunk),
                consistency_level="Strong",
            )
        found.update(str(row[ID_FIELD]) for row in rows)
    return found


def _merged_facets(manifest: Manifest, added: dict[str, list[str]]) -> dict[str, list[str]]:
    """Attribute values of the old manifest and of the new products (values only a
    deleted product had stay listed, and match nothing, until the next build)."""
    merged = {name: set(values) for name, values in manifest.extra.get("attributes", {}).items()}
    for name, values in added.items():
        merged.setdefault(name, set()).update(values)
    return {name: sorted(values)[:MAX_FACET_VALUES] for name, values in sorted(merged.items())}


def update_milvus_index(
    location: MilvusLocation,
    model: Encoder | None = None,
    catalog_path: str | Path | None = None,
    delete_ids: Iterable[str] = (),
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    max_skipped: str | int = DEFAULT_MAX_SKIPPED,
    max_image_pixels: int = DEFAULT_MAX_PIXELS,
) -> MilvusBuildReport:
    """Upsert the catalogue's products into the published collection and delete
    `delete_ids` from it, then rewrite its manifest. The model must be the one the index
    was built with (ModelMismatchError); UnknownProductError for an id to delete that
    the index lacks, and IndexerError for an attribute name the index has no column for
    (rebuild to add it), before anything is written."""
    started = time.perf_counter()
    limit = parse_max_skipped(max_skipped)
    catalog, products, deletions = read_update_request(model, catalog_path, delete_ids)
    client = connect(location)
    try:
        collection, manifest = published(client, location)
        check_update_model(model, manifest, location.describe())
        columns = columns_of(manifest, collection)
        root = Path(manifest.extra["images_root"])
        if columns is not None:
            check_attribute_names(products, columns, collection)
        check_lengths(products, root)
        held = existing_ids(client, location, collection, deletions)
        missing = [product_id for product_id in deletions if product_id not in held]
        if missing:
            raise unknown_deletions_error(missing)
        encoded_images = encoded_texts = replaced = 0
        skipped: tuple[str, ...] = ()
        facets: dict[str, list[str]] = {}
        if products and model is not None and catalog is not None:
            cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(location)
            encoded = encode_with_cache(
                products,
                model,
                cache,
                batch_size=batch_size,
                progress=progress,
                max_image_pixels=max_image_pixels,
            )
            kept, skipped = kept_products(products, encoded, catalog.skipped, limit)
            encoded_images, encoded_texts = encoded.encoded_images, encoded.encoded_texts
            replaced = len(existing_ids(client, location, collection, [p.id for p in kept]))
            assert manifest.product_weights is not None  # every Milvus index has them
            fused = fuse(encoded.image_vectors, encoded.text_vectors, manifest.product_weights)
            rows = product_rows(kept, encoded, fused, root, columns or {})
            write_rows(client, location, collection, rows, upsert=True)
            facets = attribute_facets(kept)
            products = kept
        if deletions:
            with milvus_errors(location, f"deleting products from {collection}"):
                client.delete(collection, filter=ids_expression(deletions))
        with milvus_errors(location, f"flushing {collection}"):
            client.flush(collection)
        extra = {**manifest.extra, "attributes": _merged_facets(manifest, facets)}
        extra["updated_at"] = utc_now()
        updated = replace(manifest, count=count_rows(client, location, collection), extra=extra)
        with milvus_errors(location, f"recording the manifest of {collection}"):
            client.alter_collection_properties(collection, properties=manifest_property(updated))
    finally:
        client.close()
    return MilvusBuildReport(
        location,
        collection,
        updated,
        encoded_images=encoded_images,
        encoded_texts=encoded_texts,
        skipped_rows=len(skipped),
        added=len(products) - replaced,
        replaced=replaced,
        deleted=len(deletions),
        seconds=time.perf_counter() - started,
        skipped=skipped,
    )
