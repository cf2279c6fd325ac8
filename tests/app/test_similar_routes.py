"""Target "product" in both searches and GET /v1/products/{id}/similar, against the fake
model and index; an index without product vectors answers 409."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from app_fakes import FakeEncoder, FakeIndex, image_bytes, make_settings
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app import create_app
from models.catalog import Product


def _ids(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return [result["id"] for result in response.json()["results"]]


@pytest.fixture
def legacy_client(tmp_path, products: list[Product], encoder: FakeEncoder) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The app serving an index built before product vectors existed."""
    old = FakeIndex(products, encoder, with_products=False)
    app = create_app(make_settings(tmp_path), model=encoder, index=old)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_product_target_in_both_searches(client: TestClient, products: list[Product]) -> None:
    men = sum(p.attributes["gender"] == "Men" for p in products)
    text = client.post(
        "/v1/search/text",
        json={"query": "blue shirt", "k": 100, "target": "product", "filters": {"gender": "Men"}},
    )
    assert len(_ids(text)) == men  # every match when fewer than k match
    photo = client.post(
        "/v1/search/image",
        files={"file": ("q.jpg", image_bytes(), "image/jpeg")},
        data={"k": "5", "target": "product"},
    )
    assert len(_ids(photo)) == 5
    assert client.get("/v1/facets").json()["targets"] == ["image", "text", "product"]


@pytest.mark.parametrize("target", ["image", "product"])
def test_similar_leaves_out_the_product_itself(
    client: TestClient, products: list[Product], target: str
) -> None:
    product = products[0]
    response = client.get(f"/v1/products/{product.id}/similar", params={"target": target, "k": 5})
    ids = _ids(response)
    assert len(ids) == 5 and product.id not in ids
    scores = [r["score"] for r in response.json()["results"]]
    assert scores == sorted(scores, reverse=True)
    assert response.json()["model"] == "fake-model-1"
    assert len(_ids(client.get(f"/v1/products/{product.id}/similar"))) == 10  # k=10, image


def test_similar_filters_as_query_parameters_or_json(
    client: TestClient, products: list[Product]
) -> None:
    product = products[1]
    url = f"/v1/products/{product.id}/similar"
    women = {p.id for p in products if p.attributes["gender"] == "Women"} - {product.id}
    by_param = _ids(client.get(url, params={"gender": "Women", "k": 100}))
    assert set(by_param) == women
    by_json = _ids(client.get(url, params={"filters": json.dumps({"gender": "Women"}), "k": 100}))
    assert by_json == by_param
    both = _ids(client.get(f"{url}?gender=Women&gender=Men&k=100"))  # a repeated name: any
    assert len(both) == len(
        {p.id for p in products if p.attributes["gender"] in {"Men", "Women"}} - {product.id}
    )


@pytest.mark.parametrize(
    ("query", "status", "word"),
    [
        ("?size=M", 422, "size"),
        ("?filters=%7Bnot-json", 422, "filters"),
        ("?k=0", 422, "k"),
        ("?k=101", 422, "k"),
        ("?target=video", 422, "target"),
    ],
)
def test_similar_bad_parameters(
    client: TestClient, products: list[Product], query: str, status: int, word: str
) -> None:
    response = client.get(f"/v1/products/{products[0].id}/similar{query}")
    assert response.status_code == status and word in response.json()["detail"]


def test_similar_to_an_unknown_product_is_404(client: TestClient) -> None:
    response = client.get("/v1/products/no-such-id/similar")
    assert response.status_code == 404 and "no-such-id" in response.json()["detail"]


def test_an_index_without_product_vectors_says_to_rebuild(
    legacy_client: TestClient, products: list[Product]
) -> None:
    assert legacy_client.get("/v1/facets").json()["targets"] == ["image", "text"]
    assert _ids(legacy_client.post("/v1/search/text", json={"query": "shirt"}))
    answers = [
        legacy_client.post("/v1/search/text", json={"query": "shirt", "target": "product"}),
        legacy_client.post(
            "/v1/search/image",
            files={"file": ("q.jpg", image_bytes(), "image/jpeg")},
            data={"target": "product"},
        ),
        legacy_client.get(f"/v1/products/{products[0].id}/similar?target=product"),
    ]
    for response in answers:
        assert response.status_code == 409
        assert "rebuild" in response.json()["detail"] and "index build" in response.json()["detail"]
    assert _ids(legacy_client.get(f"/v1/products/{products[0].id}/similar?target=image"))


def test_openapi_lists_the_similar_route(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app()) as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert "get" in paths["/v1/products/{product_id}/similar"]
