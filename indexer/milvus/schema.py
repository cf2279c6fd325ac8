"""What a Milvus index version holds: one collection, its fields, its index parameters,
and the manifest recorded with it.

One row per product: the product id (primary key), title, photo (a path relative to the
photos' base folder), the photo's sha256, the attributes (a JSON field: the whole map, as
products read back), one nullable VARCHAR column per attribute with an INVERTED scalar
index (what filters run on, indexer.milvus.expressions) and one vector field per search
target (`image`, `text`, `product`). The manifest (model id, embed_dim, count, product
weights, index type, attribute names and values, and the attribute -> column map) is a
collection property, so a replica needs nothing but the URI and the collection name.

Attribute columns are named from the attribute deterministically (`attribute_column`):
`attr_NAME` when NAME is ASCII letters, digits and underscores (at most 64), else
`attrx_` + its letters and digits + a hash of the name, so any name is a safe field name
and no two names share a column.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from indexer.errors import IndexCorruptError, IndexerError, IndexTypeError
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
MAX_ATTRIBUTE_LENGTH = 65_535  # bytes of one attribute value (Milvus's VARCHAR limit)
# Milvus allows 64 fields per collection (proxy.maxFieldNum); 8 are ours.
MAX_ATTRIBUTE_COLUMNS = 56
ATTRIBUTE_COLUMN_PREFIX = "attr_"  # + the name, for plain names
ESCAPED_COLUMN_PREFIX = "attrx_"  # + letters and digits + a hash, for any other name
COLUMNS_KEY = "attribute_columns"  # manifest.extra[COLUMNS_KEY]: {attribute: column}
SCALAR_INDEX = "INVERTED"  # the scalar index Milvus and Milvus Lite both build on VARCHAR
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
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


def attribute_column(name: str) -> str:
    """The column of attribute `name`: `attr_NAME` for a plain name (ASCII letters, digits,
    underscores; at most 64), else `attrx_` + up to 40 of its letters and digits + 16 hex
    digits of its sha256. Always a valid Milvus field name; the same name, the same
    column."""
    if _PLAIN_NAME.fullmatch(name):
        return ATTRIBUTE_COLUMN_PREFIX + name
    readable = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")[:40].strip("_")
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return ESCAPED_COLUMN_PREFIX + (f"{readable}_{digest}" if readable else digest)


def attribute_columns(names: Iterable[str]) -> dict[str, str]:
    """{attribute: column} for the attribute names of a catalogue, sorted by name.

    IndexerError when there are more than a collection can hold, or (never seen: a hash
    collision) when two names would share a column."""
    columns = {name: attribute_column(name) for name in sorted(set(names))}
    if len(columns) > MAX_ATTRIBUTE_COLUMNS:
        raise IndexerError(
            f"the catalogue has {len(columns)} attribute columns; a Milvus index holds at "
            f"most {MAX_ATTRIBUTE_COLUMNS} (Milvus allows 64 fields per collection): drop "
            "the columns no one filters on from the catalogue"
        )
    owners: dict[str, str] = {}
    for name, column in columns.items():
        if column in owners:
            raise IndexerError(
                f"attributes {owners[column]!r} and {name!r} map to the same Milvus column "
                f"{column!r}; rename one in the catalogue"
            )
        owners[column] = name
    return columns


def columns_of(manifest: Manifest, collection: str) -> dict[str, str] | None:
    """The {attribute: column} map recorded in a manifest; None for an index built before
    attributes had columns (filters then run on the JSON field). IndexCorruptError when it
    is not a map of names to valid field names."""
    raw = manifest.extra.get(COLUMNS_KEY)
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(
        isinstance(name, str)
        and isinstance(column, str)
        and _FIELD_NAME.fullmatch(column)
        and column.startswith((ATTRIBUTE_COLUMN_PREFIX, ESCAPED_COLUMN_PREFIX))
        for name, column in raw.items()
    ):
        raise IndexCorruptError(
            f"the manifest of Milvus collection {collection} has a damaged attribute column "
            f"map: {raw!r}"
        )
    return dict(raw)


def create_schema(dim: int, columns: Mapping[str, str] | None = None) -> Any:
    """The collection schema for embed_dim `dim` (a pymilvus CollectionSchema), with one
    nullable VARCHAR column per attribute of `columns` ({attribute: column}); a product
    without the attribute holds null there, which no filter matches."""
    DataType = pymilvus().DataType
    schema = pymilvus().MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(ID_FIELD, DataType.VARCHAR, max_length=MAX_ID_LENGTH, is_primary=True)
    schema.add_field(TITLE_FIELD, DataType.VARCHAR, max_length=MAX_TITLE_LENGTH)
    schema.add_field(PHOTO_FIELD, DataType.VARCHAR, max_length=MAX_PHOTO_LENGTH)
    schema.add_field(PHOTO_SHA_FIELD, DataType.VARCHAR, max_length=64)
    schema.add_field(ATTRIBUTES_FIELD, DataType.JSON)
    for column in (columns or {}).values():
        schema.add_field(column, DataType.VARCHAR, max_length=MAX_ATTRIBUTE_LENGTH, nullable=True)
    for name in VECTOR_FIELDS.values():
        schema.add_field(name, DataType.FLOAT_VECTOR, dim=dim)
    return schema


def index_params(
    client: Any, spec: MilvusIndexSpec, columns: Mapping[str, str] | None = None
) -> Any:
    """One vector index per target field, by inner product, and an INVERTED scalar index
    per attribute column (a filter then looks its values up instead of scanning rows)."""
    params = client.prepare_index_params()
    for name in VECTOR_FIELDS.values():
        params.add_index(
            field_name=name, index_type=spec.index_type, metric_type=METRIC, params=spec.params
        )
    for column in (columns or {}).values():
        params.add_index(field_name=column, index_type=SCALAR_INDEX, index_name=column)
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
