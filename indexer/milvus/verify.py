"""Check a published Milvus index: its manifest, counts, fields (vectors and attribute
columns), indexes and a sample of its rows (`fashion-retrieval index verify --backend
milvus`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from indexer.errors import IndexerError
from indexer.manifest import Manifest
from indexer.milvus.build import count_rows
from indexer.milvus.connection import MilvusLocation, connect, milvus_errors
from indexer.milvus.schema import ID_FIELD, VECTOR_FIELDS, columns_of
from indexer.milvus.versions import published
from models.fusion import fuse

SAMPLE_ROWS = 256
_UNIT_TOLERANCE = 1e-3
_FUSE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class MilvusVerifyReport:
    """What `verify_milvus_index` found; `ok` when there is no problem."""

    location: MilvusLocation
    collection: str | None
    manifest: Manifest | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _field_problems(description: dict[str, Any], manifest: Manifest, collection: str) -> list[str]:
    dims = {
        f["name"]: int(f.get("params", {}).get("dim", 0))
        for f in description.get("fields", [])
        if f["name"] in VECTOR_FIELDS.values()
    }
    problems = []
    for name in VECTOR_FIELDS.values():
        if name not in dims:
            problems.append(f"{collection} has no vector field {name!r}")
        elif dims[name] != manifest.embed_dim:
            problems.append(
                f"{collection}.{name} holds {dims[name]}-d vectors, the manifest says "
                f"{manifest.embed_dim}"
            )
    names = {f["name"] for f in description.get("fields", [])}
    for attribute, column in sorted((columns_of(manifest, collection) or {}).items()):
        if column not in names:
            problems.append(f"{collection} has no column {column!r} for attribute {attribute!r}")
    return problems


def _index_problems(
    client: Any, location: MilvusLocation, collection: str, manifest: Manifest
) -> list[str]:
    with milvus_errors(location, f"listing the indexes of {collection}"):
        indexed = set(client.list_indexes(collection))
        indexed |= {
            client.describe_index(collection, name).get("field_name", name) for name in indexed
        }
    problems = [
        f"{collection}.{name} has no vector index"
        for name in VECTOR_FIELDS.values()
        if name not in indexed
    ]
    columns = columns_of(manifest, collection) or {}
    problems += [
        f"{collection}.{column} has no scalar index (filters on {attribute!r} scan every row)"
        for attribute, column in sorted(columns.items())
        if column not in indexed
    ]
    return problems


def _sample_problems(
    client: Any, location: MilvusLocation, collection: str, manifest: Manifest
) -> list[str]:
    """Sampled rows: unit vectors, and product vectors that fuse photo and title."""
    with milvus_errors(location, f"reading rows of {collection}"):
        rows = client.query(
            collection,
            filter=f'{ID_FIELD} != ""',
            output_fields=[ID_FIELD, *VECTOR_FIELDS.values()],
            limit=SAMPLE_ROWS,
        )
    if not rows:
        return []
    vectors = {
        name: np.asarray([row[name] for row in rows], dtype=np.float32)
        for name in VECTOR_FIELDS.values()
    }
    problems = []
    for name, array in vectors.items():
        norms = np.linalg.norm(array, axis=1)
        bad = np.flatnonzero(np.abs(norms - 1.0) > _UNIT_TOLERANCE)
        if len(bad):
            problems.append(
                f"{collection}.{name}: {len(bad)} of {len(rows)} sampled vectors are not unit "
                f"length (product {rows[bad[0]][ID_FIELD]!r})"
            )
    if manifest.product_weights is not None:
        expected = fuse(vectors["image"], vectors["text"], manifest.product_weights)
        off = np.flatnonzero(np.abs(expected - vectors["product"]).max(axis=1) > _FUSE_TOLERANCE)
        if len(off):
            problems.append(
                f"{collection}.product: {len(off)} of {len(rows)} sampled product vectors are "
                f"not the fused photo and title (product {rows[off[0]][ID_FIELD]!r})"
            )
    return problems


def verify_milvus_index(location: MilvusLocation) -> MilvusVerifyReport:
    """Every problem of the published version: manifest, count, fields, indexes, rows."""
    try:
        client = connect(location)
    except IndexerError as exc:
        return MilvusVerifyReport(location, None, None, [str(exc)])
    try:
        try:
            collection, manifest = published(client, location)
        except IndexerError as exc:
            return MilvusVerifyReport(location, None, None, [str(exc)])
        problems: list[str] = []
        try:
            with milvus_errors(location, f"describing {collection}"):
                description = client.describe_collection(collection)
            problems += _field_problems(description, manifest, collection)
            problems += _index_problems(client, location, collection, manifest)
            with milvus_errors(location, f"loading {collection}"):
                client.load_collection(collection)
            count = count_rows(client, location, collection)
            if count != manifest.count:
                problems.append(
                    f"{collection} holds {count} products, its manifest says {manifest.count}"
                )
            problems += _sample_problems(client, location, collection, manifest)
        except IndexerError as exc:
            problems.append(str(exc))
        return MilvusVerifyReport(location, collection, manifest, problems)
    finally:
        client.close()
