"""The LRU cache of text-query embeddings: unit behaviour, hits in /metrics, size 0, and
dropping another model's entries on reload."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from app_fakes import ADMIN_TOKEN, FakeEncoder
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.query_cache import QueryCache, normalise_query


def _vector(value: float) -> np.ndarray:
    return np.full(4, value, dtype=np.float32)


def _cache_counts(client: TestClient) -> dict[str, float]:
    counts = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("fashion_query_cache_total{"):
            result = line.split('result="')[1].split('"')[0]
            counts[result] = float(line.rsplit(" ", 1)[1])
    return counts


def test_least_recently_used_is_evicted_first() -> None:
    cache = QueryCache(2)
    cache.put("m", "a", _vector(1))
    cache.put("m", "b", _vector(2))
    assert cache.get("m", "a") is not None  # a is now the most recently used
    cache.put("m", "c", _vector(3))
    assert cache.get("m", "b") is None and len(cache) == 2
    np.testing.assert_array_equal(cache.get("m", "a"), _vector(1))
    assert cache.get("other-model", "a") is None  # keyed by model id too
    stored = cache.get("m", "c")
    assert stored is not None and not stored.flags.writeable  # shared: read-only


def test_size_zero_stores_nothing_and_keep_model_drops_the_others() -> None:
    off = QueryCache(0)
    off.put("m", "a", _vector(1))
    assert len(off) == 0
    cache = QueryCache(10)
    cache.put("old", "a", _vector(1))
    cache.put("new", "a", _vector(2))
    assert cache.keep_model("new") == 1
    assert cache.get("old", "a") is None and cache.get("new", "a") is not None


def test_normalise_query() -> None:
    assert normalise_query("  Navy  Blue\tShirt \n") == "navy blue shirt"


def test_a_repeated_query_is_encoded_once_and_counted(
    client: TestClient, encoder: FakeEncoder
) -> None:
    assert _cache_counts(client) == {"hit": 0.0, "miss": 0.0}
    before = len(encoder.batches)  # the fake index encoded the catalogue
    first = client.post("/v1/search/text", json={"query": "Red  Shirt"}).json()
    second = client.post("/v1/search/text", json={"query": " red shirt "}).json()
    assert [r["id"] for r in first["results"]] == [r["id"] for r in second["results"]]
    assert [kind for kind, _ in encoder.batches[before:]] == ["text"]
    assert _cache_counts(client) == {"hit": 1.0, "miss": 1.0}


def test_size_zero_turns_the_cache_off(
    make_app: Callable[..., FastAPI], encoder: FakeEncoder
) -> None:
    with TestClient(make_app(query_cache={"size": 0})) as client:
        before = len(encoder.batches)
        for _ in range(2):
            assert client.post("/v1/search/text", json={"query": "red shirt"}).status_code == 200
        assert [kind for kind, _ in encoder.batches[before:]] == ["text", "text"]
        assert _cache_counts(client) == {"hit": 0.0, "miss": 0.0}


def test_reload_drops_the_entries_of_other_models(
    make_app: Callable[..., FastAPI], tmp_path: Path, index, encoder: FakeEncoder
) -> None:  # type: ignore[no-untyped-def]
    app = make_app(
        admin={"token": ADMIN_TOKEN}, index={"path": tmp_path / "index"}, open_index=lambda p: index
    )
    with TestClient(app) as client:
        client.post("/v1/search/text", json={"query": "red shirt"})
        cache = app.state.service.query_cache
        cache.put("a-previous-model", "red shirt", _vector(1))
        reload = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert reload.status_code == 200, reload.text
        assert cache.get("a-previous-model", "red shirt") is None
        assert cache.get(encoder.model_id, "red shirt") is not None  # this model's stay
