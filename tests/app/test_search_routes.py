"""POST /v1/search/text and /v1/search/image against the fake model and index."""

from __future__ import annotations

import io
import json

import pytest
from app_fakes import image_bytes
from fastapi.testclient import TestClient
from PIL import Image

from models.catalog import Product

RESULT_FIELDS = {"id", "score", "text", "image_url", "attributes"}


def _check_response(body: dict, k: int) -> list[dict]:
    assert set(body) == {"results", "took_ms", "model"}
    assert body["model"] == "fake-model-1"
    assert body["took_ms"] >= 0
    results = body["results"]
    assert len(results) == k
    assert all(set(r) == RESULT_FIELDS for r in results)
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    return results


@pytest.mark.parametrize("target", ["image", "text"])
def test_text_search_returns_k_products_best_first(client: TestClient, target: str) -> None:
    response = client.post(
        "/v1/search/text", json={"query": "blue shirt", "k": 7, "target": target}
    )
    assert response.status_code == 200, response.text
    results = _check_response(response.json(), 7)
    assert results[0]["image_url"] == f"/v1/products/{results[0]['id']}/image"


def test_text_search_defaults_to_ten_photos(client: TestClient, products: list[Product]) -> None:
    title = products[3].text
    response = client.post("/v1/search/text", json={"query": f"  {title}  "})
    assert response.status_code == 200
    results = _check_response(response.json(), 10)
    assert len(results) == 10
    # Searching titles with a product's exact title finds that product first.
    by_title = client.post("/v1/search/text", json={"query": title, "target": "text", "k": 1})
    assert by_title.json()["results"][0]["text"] == title


def test_text_search_filters(client: TestClient, products: list[Product]) -> None:
    men = sum(p.attributes["gender"] == "Men" for p in products)
    response = client.post(
        "/v1/search/text", json={"query": "watch", "k": 100, "filters": {"gender": "Men"}}
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == men
    assert {r["attributes"]["gender"] for r in results} == {"Men"}
    several = client.post(
        "/v1/search/text",
        json={"query": "watch", "k": 100, "filters": {"gender": ["Men", "Women"]}},
    )
    assert {r["attributes"]["gender"] for r in several.json()["results"]} <= {"Men", "Women"}


@pytest.mark.parametrize(
    ("fmt", "mode", "content_type"),
    [
        ("JPEG", "RGB", "image/jpeg"),
        ("PNG", "RGBA", "image/png"),
        ("WEBP", "RGB", "image/webp"),
        ("GIF", "P", "image/gif"),
        ("PNG", "L", "application/octet-stream"),
    ],
)
def test_image_search_accepts_common_formats(
    client: TestClient, fmt: str, mode: str, content_type: str
) -> None:
    data = image_bytes(fmt, mode="RGB" if mode == "P" else mode)
    response = client.post(
        "/v1/search/image", files={"file": (f"q.{fmt.lower()}", data, content_type)}
    )
    assert response.status_code == 200, response.text
    _check_response(response.json(), 10)


def test_image_search_of_a_catalogue_photo_finds_it(
    client: TestClient, products: list[Product]
) -> None:
    product = products[5]
    data = product.image.read_bytes()
    response = client.post(
        "/v1/search/image",
        files={"file": ("p.jpg", data, "image/jpeg")},
        data={"k": "3", "target": "image"},
    )
    assert response.status_code == 200
    assert response.json()["results"][0]["id"] == product.id


def test_image_search_first_gif_frame_and_filters(client: TestClient) -> None:
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    response = client.post(
        "/v1/search/image",
        files={"file": ("anim.gif", buffer.getvalue(), "image/gif")},
        data={"k": "5", "filters": json.dumps({"gender": ["Women"]})},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results and {r["attributes"]["gender"] for r in results} == {"Women"}
