"""/healthz, /readyz and /metrics."""

from __future__ import annotations

from collections.abc import Callable

from app_fakes import image_bytes
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "model": "fake-model-1", "products": 48}


def test_not_ready_before_loading(make_app: Callable[..., FastAPI]) -> None:
    client = TestClient(make_app())  # not entered: the lifespan has not loaded anything
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "not loaded" in response.json()["detail"]
    search = client.post("/v1/search/text", json={"query": "shirt"})
    assert search.status_code == 503
    assert "loading" in search.json()["detail"]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_after_requests(client: TestClient) -> None:
    for _ in range(3):
        client.post("/v1/search/text", json={"query": "red shirt"})
    client.post("/v1/search/text", json={"query": ""})
    client.post("/v1/search/image", files={"file": ("q.jpg", image_bytes(), "image/jpeg")})
    client.get("/v1/products/nope")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)

    def requests(endpoint: str, status: str, method: str = "POST") -> float:
        key = (
            "fashion_http_requests_total",
            (("endpoint", endpoint), ("method", method), ("status", status)),
        )
        return samples.get(key, 0.0)

    assert requests("/v1/search/text", "200") == 3
    assert requests("/v1/search/text", "422") == 1
    assert requests("/v1/search/image", "200") == 1
    assert requests("/v1/products/{product_id}", "404", "GET") == 1
    latency = (
        "fashion_http_request_duration_seconds_count",
        (("endpoint", "/v1/search/text"), ("method", "POST"), ("status", "200")),
    )
    assert samples[latency] == 3
    assert samples[("fashion_encode_seconds_count", (("modality", "text"),))] >= 1
    assert samples[("fashion_encode_seconds_count", (("modality", "image"),))] == 1
    assert samples[("fashion_search_seconds_count", (("target", "image"),))] == 3
    assert samples[("fashion_search_seconds_count", (("target", "text"),))] == 1
    assert samples[("fashion_index_products", ())] == 48
    assert samples[("fashion_model_info", (("model_id", "fake-model-1"),))] == 1


def test_each_app_has_its_own_registry(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app()) as first, TestClient(make_app()) as second:
        first.post("/v1/search/text", json={"query": "red shirt"})
        assert "/v1/search/text" in first.get("/metrics").text
        assert "/v1/search/text" not in second.get("/metrics").text
