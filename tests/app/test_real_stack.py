"""The app on the real thing: `models.load_model` (the tiny model artifact) and
`indexer.open_index` / `build_index`, loaded by the app's own lifespan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from app_fakes import ADMIN_TOKEN, FakeEncoder, make_settings
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app import create_app
from indexer import build_index
from indexer.errors import IndexNotFoundError, ModelMismatchError
from models import JointModel, read_catalog

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def real_app(tmp_path: Path, tiny_model_dir: Path, real_index_dir: Path) -> Callable[..., FastAPI]:
    def make(**groups: dict) -> FastAPI:
        groups.setdefault("index", {"path": real_index_dir, "device": "cpu"})
        model = {"path": tiny_model_dir, "device": "cpu"}
        return create_app(make_settings(tmp_path, model=model, **groups))

    return make


def test_searches_through_the_real_model_and_index(
    real_app: Callable[..., FastAPI], sample_catalog: Path, tiny_model: JointModel
) -> None:
    product = read_catalog(sample_catalog).products[7]
    with TestClient(real_app()) as client:
        assert client.get("/readyz").json() == {
            "status": "ready",
            "model": tiny_model.model_id,
            "products": 1000,
        }
        text = client.post(
            "/v1/search/text",
            json={"query": product.text, "k": 5, "target": "text", "filters": {"gender": "Men"}},
        )
        assert text.status_code == 200, text.text
        results = text.json()["results"]
        assert len(results) == 5 and {r["attributes"]["gender"] for r in results} == {"Men"}
        photo = client.post(
            "/v1/search/image",
            files={"file": ("p.jpg", product.image.read_bytes(), "image/jpeg")},
            data={"k": "3", "target": "image"},
        )
        assert photo.status_code == 200, photo.text
        top = photo.json()["results"][0]
        assert top["score"] == pytest.approx(1.0, abs=1e-4)  # the product's own photo
        assert client.get(top["image_url"]).status_code == 200
        assert client.get(f"/v1/products/{product.id}").json()["text"] == product.text
        facets = client.get("/v1/facets").json()["attributes"]
        assert "Men" in facets["gender"] and "Tshirts" in facets["articleType"]
        bad = client.post("/v1/search/text", json={"query": "x", "filters": {"size": "M"}})
        assert bad.status_code == 422 and "size" in bad.json()["detail"]


def test_sample_index_is_built_on_first_start(
    tmp_path: Path,
    real_app: Callable[..., FastAPI],
    tiny_catalog,
    tiny_model: JointModel,  # type: ignore[no-untyped-def]
) -> None:
    catalog = tiny_catalog(20)
    sample_dir = tmp_path / "sample-index"
    index = {"catalog": catalog, "sample_dir": sample_dir, "device": "cpu"}
    for _ in range(2):  # built by the first start, reused by the second
        with TestClient(real_app(index=index)) as client:
            assert client.get("/readyz").json()["products"] == 20
    versions = list((sample_dir / tiny_model.model_id / "versions").iterdir())
    assert len(versions) == 1


def test_configured_index_must_exist_unless_build_if_missing(
    tmp_path: Path,
    real_app: Callable[..., FastAPI],
    tiny_catalog,  # type: ignore[no-untyped-def]
) -> None:
    catalog = tiny_catalog(12)
    missing = {"path": tmp_path / "idx", "catalog": catalog, "device": "cpu"}
    with pytest.raises(IndexNotFoundError, match="idx"), TestClient(real_app(index=missing)):
        pass
    with TestClient(real_app(index={**missing, "build_if_missing": True})) as client:
        assert client.get("/readyz").json()["products"] == 12


def test_index_of_another_model_is_refused(
    tmp_path: Path,
    real_app: Callable[..., FastAPI],
    tiny_catalog,  # type: ignore[no-untyped-def]
) -> None:
    out = tmp_path / "other"
    build_index(tiny_catalog(8), FakeEncoder(model_id="fake-model-1"), out, progress=False)
    app = real_app(index={"path": out, "device": "cpu"})
    with pytest.raises(ModelMismatchError, match="fake-model-1"), TestClient(app):
        pass


def test_reload_picks_up_a_rebuilt_index(
    tmp_path: Path,
    real_app: Callable[..., FastAPI],
    tiny_catalog,
    tiny_model: JointModel,  # type: ignore[no-untyped-def]
) -> None:
    out = tmp_path / "served"
    build_index(tiny_catalog(10), tiny_model, out, progress=False)
    app = real_app(index={"path": out, "device": "cpu"}, admin={"token": ADMIN_TOKEN})
    with TestClient(app) as client:
        assert client.get("/readyz").json()["products"] == 10
        build_index(tiny_catalog(25), tiny_model, out, progress=False)
        assert client.get("/readyz").json()["products"] == 10  # until reloaded
        response = client.post(
            "/v1/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["products"] == 25
        assert client.post("/v1/search/text", json={"query": "shirt", "k": 25}).status_code == 200
