"""/metrics cannot be grown by clients: every label of every series is bounded."""

from __future__ import annotations

import random
import string

from fastapi.testclient import TestClient


def _series(client: TestClient) -> set[str]:
    """The labels of every request-counter series in /metrics."""
    text = client.get("/metrics").text
    return {
        line.rsplit(" ", 1)[0]
        for line in text.splitlines()
        if line.startswith("fashion_http_requests_total{")
    }


def test_made_up_methods_and_paths_do_not_add_series(client: TestClient) -> None:
    rng = random.Random(3)

    def word() -> str:
        return "".join(rng.choices(string.ascii_uppercase + string.digits, k=8))

    def burst() -> None:
        for n in range(150):
            client.request(word(), "/healthz")  # a made-up method on a known route
            client.request(word(), f"/{word().lower()}/{n}")  # ...on a made-up path
            client.get(f"/v1/products/{word()}")  # a route template with a parameter
            client.request("BREW", f"/nowhere/{n}")

    _series(client)  # the scrape itself is a series, from the second scrape on
    burst()
    first = _series(client)
    burst()
    assert _series(client) == first
    labels = "\n".join(first)
    assert 'method="other"' in labels and 'endpoint="unmatched"' in labels
    assert 'endpoint="/v1/products/{product_id}"' in labels
    assert len(first) < 15, labels
