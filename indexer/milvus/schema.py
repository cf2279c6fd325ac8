"""What a Milvus index version holds: one collection, its fields, its index parameters,
and the manifest recorded with it.

One row per product: the product id (primary key), title, photo (a path relative to the
photos' base folder), the photo's sha256, the attributes (a JSON field, filtered by
indexer.milvus.expressions) and one vector field per search target (`image`, `text`,
`product`). The manifest (model id, embed_dim, count, product weights, index type,
attribute names and values) is a collection property, so a replica needs nothing but the
URI and the collection name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from indexer.errors import IndexCorruptError, IndexTypeError
from indexer.faiss_index import EXACT_MAX, ivf_nlist
from indexer.manifest import TARGETS, Manifest
from indexer.milvus.connection import pymilvus

MANIFEST_PROPERTY = "fashion_retrieval.manifest"
BACKEND = "milvus"
METRIC = "IP"  # inner product on L2-normalised vectors: cosine similarity, as FAISS
ID_FIELD = "id"
TITLE_FIELD = "title"
PHOTO_FIELD = "photo"
PHOTO_SHA_FIELD = "photo_sha256"
ATTRIBUTES_FIELD = "attributes"
VECTOR_FIELDS: dict[str, str] = {target: target for target in TARGETS}  # target -> field
MAX_ID_LENGTH = 512
MAX_TITLE_LENGTH = 65_535
MAX_PHOTO_LENGTH = 4_096
# Facet values kept in the manifest per attribute: enough for any filter menu, and a
# manifest that stays small in Milvus's metadata store.
MAX_FACET_VALUES = 1_000
EXACT_INDEX = "FLAT"
INDEX_TYPES = {
    "FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "HNSW_SQ", "SCANN", "DISKANN",
    "AUTOINDEX", "GPU_IVF_FLAT", "GPU_IVF_PQ", "GPU_CAGRA", "GPU_BRUTE_FORCE",
}  # fmt: skip


@dataclass(frozen=True)
class MilvusIndexSpec:
    """A Milvus vector index: its type, build parameters and search parameters."""

    index_type: str
    params: dict[str, Any] = field(default_factory=dict)
    search_params: dict[str, Any] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return self.index_type in (EXACT_INDEX, "GPU_BRUTE_FORCE")


def choose_milvus_index(n: int, override: dict[str, Any] | None = None) -> MilvusIndexSpec:
    """The index for n products, as the FAISS backend chooses: exact (FLAT) up to
    EXACT_MAX, then IVF_FLAT with the same lists and nprobe (recall@10 >= 0.95 of exact,
    benchmarks/bench_index.py). `override`: {"index_type", "params", "search_params"},
    e.g. {"index_type": "HNSW", "params": {"M": 32, "efConstruction": 200},
    "search_params": {"ef": 128}} or a GPU index ("GPU_CAGRA", "GPU_IVF_FLAT") on a
    Milvus with GPU query nodes."""
    if override is not None:
        return _spec_from(override)
    if n <= EXACT_MAX:
        return MilvusIndexSpec(EXACT_INDEX)
    nlist = ivf_nlist(n)
    return MilvusIndexSpec("IVF_FLAT", {"nlist": nlist}, {"nprobe": max(8, nlist // 16)})


def _spec_from(override: dict[str, Any]) -> MilvusIndexSpec:
    if not isinstance(override, dict) or not isinstance(override.get("index_type"), str):
        raise IndexTypeError(
            f"invalid Milvus index parameters {override!r}: give a JSON object such as "
            '{"index_type": "HNSW", "params": {"M": 32, "efConstruction": 200}, '
            '"search_params": {"ef": 128}}'
        )
    index_type = override["index_type"].upper()
    if index_type not in INDEX_TYPES:
        raise IndexTypeError(
            f"unknown Milvus index type {override['index_type']!r}; use one of "
            f"{', '.join(sorted(INDEX_TYPES))}"
        )
    unknown = set(override) - {"index_type", "params", "search_params"}
    params, search = override.get("params", {}), override.get("search_params", {})
    if unknown or not isinstance(params, dict) or not isinstance(search, dict):
        raise IndexTypeError(
            f"invalid Milvus index parameters {override!r}: only index_type, params "
            "(an object) and search_params (an object) are known"
        )
    return MilvusIndexSpec(index_type, dict(params), dict(search))


def parse_index_params(text: str) -> dict[str, Any]:
    """--milvus-index-params JSON -> dict (IndexTypeError when it is not a JSON object)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IndexTypeError(f"--milvus-index-params is not valid JSON: {exc}") from exc
    _spec_from(value)
    return value


def create_schema(dim: int) -> Any:
    """The collection schema for embed_dim `dim` (a pymilvus CollectionSchema)."""
    DataType = pymilvus().DataType
    schema = pymilvus().MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(ID_FIELD, DataType.VARCHAR, max_length=MAX_ID_LENGTH, is_primary=True)
    schema.add_field(TITLE_FIELD, DataType.VARCHAR, max_length=MAX_TITLE_LENGTH)
    schema.add_field(PHOTO_FIELD, DataType.VARCHAR, max_length=MAX_PHOTO_LENGTH)
    schema.add_field(PHOTO_SHA_FIELD, DataType.VARCHAR, max_length=64)
    schema.add_field(ATTRIBUTES_FIELD, DataType.JSON)
    for name in VECTOR_FIELDS.values():
        schema.add_field(name, DataType.FLOAT_VECTOR, dim=dim)
    return schema


def index_params(client: Any, spec: MilvusIndexSpec) -> Any:
    """One vector index per target field, by inner product."""
    params = client.prepare_index_params()
    for name in VECTOR_FIELDS.values():
        params.add_index(
            field_name=name, index_type=spec.index_type, metric_type=METRIC, params=spec.params
        )
    return params


def manifest_property(manifest: Manifest) -> dict[str, str]:
    return {MANIFEST_PROPERTY: json.dumps(manifest.to_dict(), sort_keys=True)}


def manifest_of(properties: dict[str, Any], collection: str) -> Manifest | None:
    """The manifest recorded with a collection; None for one a build did not finish."""
    raw = properties.get(MANIFEST_PROPERTY)
    if raw is None:
        return None
    try:
        manifest = Manifest.from_dict(json.loads(raw))
    except (ValueError, TypeError) as exc:
        raise IndexCorruptError(
            f"the manifest of Milvus collection {collection} is damaged: {exc}"
        ) from exc
    if manifest.extra.get("backend") != BACKEND:
        raise IndexCorruptError(f"Milvus collection {collection} holds no fashion-retrieval index")
    return manifest


def facet_values(values: dict[str, set[str]]) -> dict[str, list[str]]:
    """{attribute: sorted values}, at most MAX_FACET_VALUES each, for the manifest."""
    return {name: sorted(found)[:MAX_FACET_VALUES] for name, found in sorted(values.items())}
