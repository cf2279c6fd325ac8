"""Describe a Milvus index in words (`fashion-retrieval index info --backend milvus`)."""

from __future__ import annotations

from indexer.milvus.connection import MilvusLocation, connect
from indexer.milvus.schema import columns_of
from indexer.milvus.versions import list_versions, published


def _kind(index_type: str, params: dict, search: dict) -> str:
    if index_type == "FLAT":
        return "FLAT (exact search)"
    said = ", ".join(f"{k}={v}" for k, v in {**params, **search}.items())
    return f"{index_type} (approximate search{'; ' + said if said else ''})"


def describe_milvus_index(location: MilvusLocation) -> str:
    """A few lines saying what the published Milvus index holds."""
    client = connect(location)
    try:
        collection, manifest = published(client, location)
        versions = list_versions(client, location)
    finally:
        client.close()
    extra = manifest.extra
    w_image, w_text = manifest.product_weights or (0.0, 0.0)
    attributes = extra.get("attributes", {})
    names = ", ".join(f"{name} ({len(values)})" for name, values in attributes.items())
    if names:
        names += (
            " (JSON only: filters scan rows; rebuild for indexed columns)"
            if columns_of(manifest, collection) is None
            else "; filtered on indexed columns"
        )
    lines = [
        f"index {location.describe()} -> {collection}",
        f"  version     {collection}, created {manifest.created_at}"
        + (f", updated {extra['updated_at']}" if "updated_at" in extra else ""),
        f"  products    {manifest.count}",
        f"  model       {manifest.model_id}",
        f"  embeddings  {manifest.embed_dim}-d, L2-normalised, searched by inner product",
        "  index type  "
        + _kind(manifest.index_type, extra.get("index_params", {}), manifest.search_params)
        + ", one per target",
        f"  targets     image, text, product (product = {w_image:g} x image + {w_text:g} x text)",
        f"  attributes  {names or 'none'}",
        (
            f"  images      under {extra.get('images_root', '?')} (the service's "
            "FASHION_INDEX__IMAGES_DIR can move this base)"
        ),
        "  versions    " + ", ".join(f"{v} (current)" if v == collection else v for v in versions),
    ]
    return "\n".join(lines)
