"""GET /v1/products/{id}, its image, and /v1/facets."""

from __future__ import annotations

from fastapi.testclient import TestClient

from models.catalog import Product


def test_get_product(client: TestClient, products: list[Product]) -> None:
    product = products[0]
    response = client.get(f"/v1/products/{product.id}")
    assert response.status_code == 200
    assert response.json() == {
        "id": product.id,
        "text": product.text,
        "image_url": f"/v1/products/{product.id}/image",
        "attributes": product.attributes,
    }


def test_get_product_image(client: TestClient, products: list[Product]) -> None:
    product = products[0]
    response = client.get(f"/v1/products/{product.id}/image")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content == product.image.read_bytes()
    assert "max-age" in response.headers["cache-control"]
    assert response.headers["etag"]


def test_unknown_product_is_404(client: TestClient) -> None:
    for path in ("/v1/products/no-such-id", "/v1/products/no-such-id/image"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json() == {"detail": "no product with id 'no-such-id'"}


def test_facets(client: TestClient, products: list[Product]) -> None:
    response = client.get("/v1/facets")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == len(products)
    assert body["model"] == "fake-model-1"
    assert body["attributes"]["gender"] == sorted({p.attributes["gender"] for p in products})
    assert "articleType" in body["attributes"]
