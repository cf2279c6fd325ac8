"""Product vectors, "more like this" and the query cache on the real stack: the tiny
model artifact and an index built by `indexer.build_index`, loaded by the app."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from app_fakes import make_settings
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app import create_app
from models import read_catalog

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def real_app(tmp_path: Path, tiny_model_dir: Path) -> Callable[[Path], FastAPI]:
    def make(index_dir: Path) -> FastAPI:
        model = {"path": tiny_model_dir, "device": "cpu"}
        index = {"path": index_dir, "device": "cpu"}
        return create_app(make_settings(tmp_path, model=model, index=index))

    return make


def test_product_search_similar_and_cached_queries(
    real_app: Callable[[Path], FastAPI], real_index_dir: Path, sample_catalog: Path
) -> None:
    product = read_catalog(sample_catalog).products[7]
    with TestClient(real_app(real_index_dir)) as client:
        assert client.get("/v1/facets").json()["targets"] == ["image", "text", "product"]
        body = {"query": product.text, "k": 5, "target": "product", "filters": {"gender": "Men"}}
        first = client.post("/v1/search/text", json=body)
        again = client.post("/v1/search/text", json=body)  # the cached, read-only vector
        assert first.status_code == again.status_code == 200, again.text
        results = first.json()["results"]
        assert len(results) == 5 and {r["attributes"]["gender"] for r in results} == {"Men"}
        assert [r["id"] for r in again.json()["results"]] == [r["id"] for r in results]
        assert 'fashion_query_cache_total{result="hit"} 1.0' in client.get("/metrics").text
        similar = client.get(f"/v1/products/{product.id}/similar?target=product&k=8")
        assert similar.status_code == 200, similar.text
        ids = [r["id"] for r in similar.json()["results"]]
        assert len(ids) == 8 and product.id not in ids


def test_an_index_built_before_product_vectors_still_serves(
    real_app: Callable[[Path], FastAPI],
    real_index_dir: Path,
    tmp_path: Path,
    make_legacy_index,  # type: ignore[no-untyped-def]
) -> None:
    legacy = make_legacy_index(real_index_dir, tmp_path / "legacy")
    with TestClient(real_app(legacy)) as client:
        assert client.get("/v1/facets").json()["targets"] == ["image", "text"]
        for target in ("image", "text"):
            response = client.post("/v1/search/text", json={"query": "shirt", "target": target})
            assert response.status_code == 200 and len(response.json()["results"]) == 10
        refused = client.post("/v1/search/text", json={"query": "shirt", "target": "product"})
        assert refused.status_code == 409 and "rebuild" in refused.json()["detail"]
