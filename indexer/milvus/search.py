"""Open a published Milvus index and search it, with the API of indexer.search.

index = open_milvus_index(MilvusLocation("var/milvus.db"), expected_model_id=model.model_id)
hits = index.search(model.encode_texts(["red dress"]), 10, {"gender": "Women"}, target="product")

Opening resolves the alias once: the index searches that version collection until it is
closed, so a replica answers from one version until it reloads (POST /v1/admin/reload
opens the version the alias names then). Everything a query needs is in Milvus: vectors,
ids, titles, attributes and the manifest; photos are files under a base folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexer.errors import (
    IndexUnavailableError,
    InvalidQueryError,
    TargetUnavailableError,
    UnknownProductError,
)
from indexer.filters import Filters
from indexer.manifest import TARGETS, Manifest, Target, check_model
from indexer.milvus.connection import MilvusLocation, connect, milvus_errors
from indexer.milvus.expressions import (
    excluding_ids,
    filter_expression,
    ids_expression,
    json_filter_expression,
    literal,
)
from indexer.milvus.schema import (
    ATTRIBUTES_FIELD,
    ID_FIELD,
    METRIC,
    PHOTO_FIELD,
    PHOTO_SHA_FIELD,
    TITLE_FIELD,
    VECTOR_FIELDS,
    columns_of,
)
from indexer.milvus.versions import published
from indexer.search import Hit, IndexAPI
from indexer.similar import SAME_PHOTO_MIN_COSINE
from models.catalog import Product

# Milvus returns at most this many rows per query call; an exact re-scan of a filter's
# matches (when an approximate index found fewer than k) fetches at most this many.
QUERY_LIMIT = 16_384
_PRODUCT_FIELDS = [ID_FIELD, TITLE_FIELD, PHOTO_FIELD, ATTRIBUTES_FIELD]
_LOOKUP = 1_000


class MilvusIndex(IndexAPI):
    """A published Milvus index version: search, more like this, product records."""

    def __init__(
        self,
        client: Any,
        location: MilvusLocation,
        collection: str,
        manifest: Manifest,
        images_dir: Path | None = None,
    ) -> None:
        self._client = client
        self.location = location
        self.collection = collection
        self.manifest = manifest
        self.images_dir = images_dir or Path(manifest.extra.get("images_root", "."))
        self._attributes: dict[str, list[str]] = dict(manifest.extra.get("attributes", {}))
        # {attribute: column}; None for an index built before attribute columns (filters
        # then run on JSON paths: right, but a row scan on Milvus Lite)
        self.columns: dict[str, str] | None = columns_of(manifest, collection)

    @property
    def targets(self) -> tuple[Target, ...]:
        return TARGETS

    @property
    def placement(self) -> str:
        return "milvus"

    def __len__(self) -> int:
        """The product count recorded in the manifest when the index was opened."""
        return self.manifest.count

    def _call(self, doing: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """A client call; a collection released by a restarted server is loaded again."""
        function = getattr(self._client, method)
        with milvus_errors(self.location, doing):
            try:
                return function(*args, timeout=self.location.timeout_s, **kwargs)
            except Exception as exc:
                if "load" not in str(exc).lower() or "released" not in str(exc).lower():
                    raise
            self._client.load_collection(self.collection, timeout=self.location.timeout_s)
            return function(*args, timeout=self.location.timeout_s, **kwargs)

    def check_available(self) -> None:
        """IndexUnavailableError unless Milvus answers and holds this version, loaded."""
        with milvus_errors(self.location, "checking the index"):
            if not self._client.has_collection(self.collection, timeout=2.0):
                raise IndexUnavailableError(
                    f"the served version {self.collection} is gone from {self.location.uri} "
                    "(dropped by newer builds); reload the index"
                )
            state = self._client.get_load_state(self.collection, timeout=2.0)
            if "loaded" != str(state.get("state", "")).rsplit(".", 1)[-1].lower():
                self._client.load_collection(self.collection, timeout=self.location.timeout_s)

    def _vector_field(self, target: str) -> str:
        field = VECTOR_FIELDS.get(target)
        if field is None:
            if target == "product":  # pragma: no cover - every Milvus index has them
                raise TargetUnavailableError("this index has no product vectors")
            raise InvalidQueryError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
        return field

    def expression(self, filters: Filters | None) -> str:
        """The Milvus filter expression of `filters` (UnknownAttributeError for a name the
        index does not know): lookups on the attribute columns."""
        if self.columns is None:
            return json_filter_expression(filters, self._attributes)
        return filter_expression(filters, self.columns)

    def _search(self, queries: np.ndarray, k: int, field: str, expr: str) -> list[list[Hit]]:
        if len(queries) == 0:
            return []
        limit = min(int(k), QUERY_LIMIT)
        rows = self._call(
            f"searching {self.collection}",
            "search",
            self.collection,
            data=list(queries),
            anns_field=field,
            limit=limit,
            filter=expr,
            output_fields=[ID_FIELD],
            search_params={"metric_type": METRIC, "params": dict(self.manifest.search_params)},
        )
        results = [[Hit(str(hit[ID_FIELD]), float(hit["distance"])) for hit in row] for row in rows]
        short = [i for i, row in enumerate(results) if len(row) < limit]
        if short:
            matching = self._count(expr) if expr else len(self)
            for i in short:
                if matching > len(results[i]):  # an approximate index missed some
                    results[i] = self._exact(queries[i], limit, field, expr)
        return results

    def _count(self, expr: str) -> int:
        rows = self._call(
            f"counting matches in {self.collection}",
            "query",
            self.collection,
            filter=expr,
            output_fields=["count(*)"],
        )
        return int(rows[0]["count(*)"])

    def _exact(self, query: np.ndarray, k: int, field: str, expr: str) -> list[Hit]:
        """Exact top k over the products matching `expr` (at most QUERY_LIMIT of them)."""
        rows = self._call(
            f"reading vectors of {self.collection}",
            "query",
            self.collection,
            filter=expr or f'{ID_FIELD} != ""',
            output_fields=[ID_FIELD, field],
            limit=QUERY_LIMIT,
        )
        if not rows:
            return []
        vectors = np.asarray([row[field] for row in rows], dtype=np.float32)
        scores = vectors @ query
        order = np.argsort(-scores, kind="stable")[:k]
        return [Hit(str(rows[i][ID_FIELD]), float(scores[i])) for i in order]

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
        target's vectors, best first (inner product = cosine similarity). Milvus has no
        hubness correction (`hubness_targets` is empty): `corrected` changes nothing."""
        field = self._vector_field(target)
        return self._search(self._queries(vectors, k), k, field, self.expression(filters))

    def _duplicates(self, product_id: str, row: dict[str, Any]) -> list[str]:
        """The product and its exact duplicates: the same photo bytes, or the same title
        and (all but) the same photo embedding (indexer.similar's rule)."""
        same = self._call(
            f"finding duplicates in {self.collection}",
            "query",
            self.collection,
            filter=f"{PHOTO_SHA_FIELD} == {literal(row[PHOTO_SHA_FIELD])} "
            f"or {TITLE_FIELD} == {literal(row[TITLE_FIELD])}",
            output_fields=[ID_FIELD, PHOTO_SHA_FIELD, VECTOR_FIELDS["image"]],
            limit=QUERY_LIMIT,
        )
        own = np.asarray(row[VECTOR_FIELDS["image"]], dtype=np.float32)
        excluded = {product_id}
        for other in same:
            if other[PHOTO_SHA_FIELD] == row[PHOTO_SHA_FIELD]:
                excluded.add(str(other[ID_FIELD]))
                continue
            photo = np.asarray(other[VECTOR_FIELDS["image"]], dtype=np.float32)
            if float(photo @ own) >= SAME_PHOTO_MIN_COSINE:
                excluded.add(str(other[ID_FIELD]))
        return sorted(excluded)

    def similar(
        self, product_id: str, k: int, filters: Filters | None = None, *, target: Target = "image"
    ) -> list[Hit]:
        """min(k, candidates) products nearest to product_id's own vector of target,
        without the product and its exact duplicates; UnknownProductError for an id the
        index does not hold."""
        field = self._vector_field(target)
        expr = self.expression(filters)
        fields = list(dict.fromkeys([ID_FIELD, TITLE_FIELD, PHOTO_SHA_FIELD, "image", field]))
        rows = self._call(
            f"reading product {product_id!r}",
            "get",
            self.collection,
            ids=[product_id],
            output_fields=fields,
        )
        if not rows:
            raise UnknownProductError(f"no product with id {product_id!r} in the index")
        row = rows[0]
        query = self._queries(np.asarray([row[field]], dtype=np.float32), k)
        excluded = excluding_ids(expr, self._duplicates(product_id, row))
        return self._search(query, k, field, excluded)[0]

    def get_products(self, ids: Sequence[str]) -> list[Product | None]:
        """Products in the order of ids; None for an id the index does not hold."""
        wanted = list(dict.fromkeys(str(i) for i in ids))
        found: dict[str, Product] = {}
        for start in range(0, len(wanted), _LOOKUP):
            chunk = wanted[start : start + _LOOKUP]
            rows = self._call(
                f"reading products of {self.collection}",
                "query",
                self.collection,
                filter=ids_expression(chunk),
                output_fields=_PRODUCT_FIELDS,
                limit=len(chunk),
            )
            for row in rows:
                found[str(row[ID_FIELD])] = self._product(row)
        return [found.get(str(i)) for i in ids]

    def _product(self, row: dict[str, Any]) -> Product:
        photo = Path(row[PHOTO_FIELD])
        image = photo if photo.is_absolute() else self.images_dir / photo
        attributes = {str(k): str(v) for k, v in (row[ATTRIBUTES_FIELD] or {}).items()}
        return Product(str(row[ID_FIELD]), image, str(row[TITLE_FIELD]), attributes)

    def attribute_values(self) -> dict[str, list[str]]:
        """{attribute: sorted distinct non-empty values}, from the manifest."""
        return {name: [v for v in values if v] for name, values in sorted(self._attributes.items())}

    def close(self) -> None:
        self._client.close()


def open_milvus_index(
    location: MilvusLocation,
    *,
    expected_model_id: str | None = None,
    images_dir: str | Path | None = None,
) -> MilvusIndex:
    """Open the version the alias names, loaded for search.

    expected_model_id: ModelMismatchError when the index was built with another model.
    images_dir: the base folder of the product photos (default: the catalogue folder
    recorded at build time).
    """
    client = connect(location)
    try:
        collection, manifest = published(client, location)
        check_model(manifest.model_id, expected_model_id, location.describe())
        with milvus_errors(location, f"loading {collection}"):
            client.load_collection(collection, timeout=location.timeout_s)
    except BaseException:
        client.close()
        raise
    photos = Path(images_dir) if images_dir else None
    return MilvusIndex(client, location, collection, manifest, photos)
