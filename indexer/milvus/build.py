"""Build a Milvus index version from a catalogue and publish it by moving the alias.

The build encodes through the embedding cache (as the FAISS build does), writes a new
version collection, indexes and loads it, checks its count and model id, records the
manifest with it and only then moves the alias (indexer.milvus.versions). Any failure
before the alias moves leaves the published version serving.

The catalogue's attribute names become the collection's attribute columns
(indexer.milvus.schema.attribute_columns), fixed for the life of the version: an update
may bring new values, but a new attribute name needs a build.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexer.encode import DEFAULT_BATCH_SIZE, EncodedProducts, Encoder
from indexer.errors import IndexerError
from indexer.manifest import FORMAT_VERSION, Manifest, utc_now
from indexer.milvus.connection import MilvusLocation, connect, milvus_errors
from indexer.milvus.schema import (
    ATTRIBUTES_FIELD,
    BACKEND,
    COLUMNS_KEY,
    ID_FIELD,
    MAX_ATTRIBUTE_LENGTH,
    MAX_ID_LENGTH,
    MAX_PHOTO_LENGTH,
    MAX_TITLE_LENGTH,
    PHOTO_FIELD,
    PHOTO_SHA_FIELD,
    TITLE_FIELD,
    VECTOR_FIELDS,
    MilvusIndexSpec,
    attribute_columns,
    choose_milvus_index,
    create_schema,
    facet_values,
    index_params,
    manifest_property,
)
from indexer.milvus.versions import next_version, prune_versions, read_manifest, switch_alias
from indexer.skips import DEFAULT_MAX_SKIPPED, parse_max_skipped
from indexer.versions import PublishedCounts, encode_with_cache, kept_products
from models.catalog import Product, read_catalog
from models.fusion import DEFAULT_PRODUCT_WEIGHTS, check_weights, fuse
from models.images import DEFAULT_MAX_PIXELS

# Rows per insert call: about 6 MB of vectors at 512-d, well under gRPC's 64 MB limit.
INSERT_ROWS = 1_000
DEFAULT_CACHE_ROOT = Path("var") / "milvus-cache"


@dataclass(frozen=True)
class MilvusBuildReport(PublishedCounts):
    """What a Milvus build or update published."""

    location: MilvusLocation
    collection: str
    manifest: Manifest
    dropped: tuple[str, ...] = ()  # collections removed: unfinished ones, and old versions


def default_cache_dir(location: MilvusLocation) -> Path:
    """Where embeddings are cached when no --cache-dir is given: beside a local .db file,
    else var/milvus-cache/COLLECTION under the working directory."""
    if location.is_local:
        path = Path(location.client_uri())
        return path.with_name(f"{path.stem}-cache") / location.collection
    return DEFAULT_CACHE_ROOT / location.collection


def photo_reference(image: Path, root: Path) -> str:
    """The photo's path relative to the photos' base folder (absolute when outside it)."""
    try:
        return image.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(image.resolve())


def check_lengths(products: Sequence[Product], root: Path) -> None:
    """IndexerError naming the first product whose id, title, photo path or an attribute
    value is longer than its Milvus field takes (before anything is written)."""
    for product in products:
        too_long = [
            ("id", len(product.id.encode("utf-8")), MAX_ID_LENGTH),
            ("title", len(product.text.encode("utf-8")), MAX_TITLE_LENGTH),
            ("photo path", len(photo_reference(product.image, root).encode()), MAX_PHOTO_LENGTH),
        ]
        too_long += [
            (f"attribute {name!r}", len(value.encode("utf-8")), MAX_ATTRIBUTE_LENGTH)
            for name, value in product.attributes.items()
        ]
        for what, size, limit in too_long:
            if size > limit:
                raise IndexerError(
                    f"product {product.id[:80]!r}: its {what} is {size} bytes, over the "
                    f"{limit} a Milvus index takes; shorten it in the catalogue"
                )


def product_rows(
    products: Sequence[Product],
    encoded: EncodedProducts,
    fused: np.ndarray,
    root: Path,
    columns: Mapping[str, str],
) -> Iterator[dict[str, Any]]:
    """One Milvus row per product: scalar fields, the value of each attribute column
    (None where the product lacks the attribute) and a vector per target (the rows of
    `encoded` and `fused` are those of `products`). columns: {attribute: column}, every
    attribute of `products` among them (`check_attribute_names`)."""
    vectors = {"image": encoded.image_vectors, "text": encoded.text_vectors, "product": fused}
    for at, product in enumerate(products):
        record: dict[str, Any] = {
            ID_FIELD: product.id,
            TITLE_FIELD: product.text,
            PHOTO_FIELD: photo_reference(product.image, root),
            PHOTO_SHA_FIELD: encoded.image_sha256[at],
            ATTRIBUTES_FIELD: dict(product.attributes),
        }
        for name, column in columns.items():
            record[column] = product.attributes.get(name)
        for target, name in VECTOR_FIELDS.items():
            record[name] = vectors[target][at].astype(np.float32, copy=False)
        yield record


def write_rows(
    client: Any,
    location: MilvusLocation,
    collection: str,
    rows: Iterator[dict[str, Any]],
    *,
    upsert: bool = False,
) -> int:
    """Insert (or upsert) rows in batches of INSERT_ROWS; returns how many."""
    written = 0
    batch: list[dict[str, Any]] = []
    call = client.upsert if upsert else client.insert
    for row in rows:
        batch.append(row)
        if len(batch) == INSERT_ROWS:
            with milvus_errors(location, f"writing products into {collection}"):
                call(collection, batch)
            written, batch = written + len(batch), []
    if batch:
        with milvus_errors(location, f"writing products into {collection}"):
            call(collection, batch)
        written += len(batch)
    return written


def attribute_facets(products: Sequence[Product]) -> dict[str, list[str]]:
    values: dict[str, set[str]] = {}
    for product in products:
        for name, value in product.attributes.items():
            values.setdefault(name, set()).add(value)
    return facet_values(values)


def check_attribute_names(
    products: Sequence[Product], columns: Mapping[str, str], collection: str
) -> None:
    """IndexerError when a product has an attribute the collection has no column for:
    columns are fixed when a version is built, so a new attribute name needs a build."""
    new = sorted({name for product in products for name in product.attributes} - set(columns))
    if new:
        listed = ", ".join(repr(name) for name in new)
        raise IndexerError(
            f"the catalogue has attribute{'s' if len(new) > 1 else ''} {listed} that the "
            f"Milvus index {collection} has no column for (it has: "
            f"{', '.join(repr(name) for name in sorted(columns)) or 'none'}); attribute "
            "columns are fixed when an index is built, so run `index build --backend "
            "milvus` with the whole catalogue to add them; nothing was updated"
        )


def count_rows(client: Any, location: MilvusLocation, collection: str) -> int:
    """Rows in the collection, as of now (strong consistency)."""
    with milvus_errors(location, f"counting the products of {collection}"):
        rows = client.query(
            collection, filter="", output_fields=["count(*)"], consistency_level="Strong"
        )
    return int(rows[0]["count(*)"])


def _create_version(
    client: Any, location: MilvusLocation, dim: int, columns: Mapping[str, str]
) -> str:
    name = next_version(client, location)
    with milvus_errors(location, f"creating the collection {name}"):
        client.create_collection(
            name, schema=create_schema(dim, columns), consistency_level="Bounded"
        )
    return name


def _index_and_load(
    client: Any,
    location: MilvusLocation,
    collection: str,
    spec: MilvusIndexSpec,
    columns: Mapping[str, str],
) -> None:
    # Milvus Lite builds the indexes when the collection loads; pymilvus's wait for each
    # index to finish (polled every 0.5 s: 7 s for 11 attributes) is for a server, which
    # builds them in the background.
    wait = not location.is_local
    with milvus_errors(location, f"indexing {collection} ({spec.index_type})"):
        client.flush(collection)
        client.create_index(collection, index_params(client, spec, columns), sync=wait)
        client.load_collection(collection)


def _check_version(
    client: Any, location: MilvusLocation, collection: str, manifest: Manifest
) -> None:
    """The new version holds every product; its manifest reads back as written."""
    count = count_rows(client, location, collection)
    if count != manifest.count:
        raise IndexerError(
            f"the new version {collection} holds {count} products, not {manifest.count}; "
            "nothing was published"
        )
    with milvus_errors(location, f"recording the manifest of {collection}"):
        client.alter_collection_properties(collection, properties=manifest_property(manifest))
    recorded = read_manifest(client, location, collection)
    if recorded is None or recorded.model_id != manifest.model_id:
        raise IndexerError(
            f"the new version {collection} did not keep its manifest (model id); "
            "nothing was published"
        )


def new_manifest(
    *,
    model_id: str,
    dim: int,
    count: int,
    spec: MilvusIndexSpec,
    collection: str,
    weights: Sequence[float],
    images_root: Path,
    facets: Mapping[str, list[str]],
    columns: Mapping[str, str],
) -> Manifest:
    return Manifest(
        format_version=FORMAT_VERSION,
        model_id=model_id,
        embed_dim=dim,
        count=count,
        index_type=spec.index_type,
        search_params=dict(spec.search_params),
        created_at=utc_now(),
        files={},
        version=collection,
        product_weights=list(weights),
        extra={
            "backend": BACKEND,
            "index_params": dict(spec.params),
            "images_root": str(images_root),
            "attributes": dict(facets),
            COLUMNS_KEY: dict(columns),
        },
    )


def build_milvus_index(
    catalog_path: str | Path,
    model: Encoder,
    location: MilvusLocation,
    *,
    index_params_override: dict[str, Any] | None = None,
    product_weights: Sequence[float] = DEFAULT_PRODUCT_WEIGHTS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    max_skipped: str | int = DEFAULT_MAX_SKIPPED,
    max_image_pixels: int = DEFAULT_MAX_PIXELS,
) -> MilvusBuildReport:
    """Encode every product of the catalogue into a new version collection and move the
    alias `location.collection` onto it. Photos are referenced relative to the
    catalogue's folder (the service's FASHION_INDEX__IMAGES_DIR can move that base)."""
    started = time.perf_counter()
    weights = check_weights(product_weights)
    limit = parse_max_skipped(max_skipped)
    catalog = read_catalog(catalog_path)
    root = Path(catalog_path).resolve().parent
    spec = choose_milvus_index(len(catalog.products), index_params_override)
    check_lengths(catalog.products, root)
    attribute_columns(catalog.attribute_names)  # too many, or clashing: say so before encoding
    client = connect(location)
    try:
        leftovers = prune_versions(client, location)  # unfinished versions of killed builds
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(location)
        encoded = encode_with_cache(
            catalog.products,
            model,
            cache,
            batch_size=batch_size,
            progress=progress,
            max_image_pixels=max_image_pixels,
        )
        kept, skipped = kept_products(catalog.products, encoded, catalog.skipped, limit)
        spec = choose_milvus_index(len(kept), index_params_override)
        fused = fuse(encoded.image_vectors, encoded.text_vectors, weights)
        facets = attribute_facets(kept)
        columns = attribute_columns(facets)
        collection = _create_version(client, location, model.embed_dim, columns)
        rows = product_rows(kept, encoded, fused, root, columns)
        write_rows(client, location, collection, rows)
        _index_and_load(client, location, collection, spec, columns)
        manifest = new_manifest(
            model_id=model.model_id,
            dim=model.embed_dim,
            count=len(kept),
            spec=spec,
            collection=collection,
            weights=weights,
            images_root=root,
            facets=facets,
            columns=columns,
        )
        _check_version(client, location, collection, manifest)
        switch_alias(client, location, collection)
        dropped = leftovers + prune_versions(client, location)
    finally:
        client.close()
    return MilvusBuildReport(
        location,
        collection,
        manifest,
        encoded_images=encoded.encoded_images,
        encoded_texts=encoded.encoded_texts,
        skipped_rows=len(skipped),
        added=len(kept),
        seconds=time.perf_counter() - started,
        skipped=skipped,
        dropped=tuple(dropped),
    )
