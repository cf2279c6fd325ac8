"""POST /v1/admin/reload: auth, swapping the index, failures, and reload under load."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from app_fakes import ADMIN_TOKEN, FakeEncoder, FakeIndex, running
from fastapi import FastAPI
from fastapi.testclient import TestClient

from models.catalog import Product

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _admin_app(make_app: Callable[..., FastAPI], tmp_path: Path, opener) -> FastAPI:  # type: ignore[no-untyped-def]
    return make_app(
        admin={"token": ADMIN_TOKEN}, index={"path": tmp_path / "index"}, open_index=opener
    )


def test_reload_is_off_without_a_token(client: TestClient) -> None:
    response = client.post("/v1/admin/reload", headers=AUTH)
    assert response.status_code == 404
    assert "FASHION_ADMIN__TOKEN" in response.json()["detail"]


@pytest.mark.parametrize(
    ("headers", "status", "word"),
    [
        ({}, 401, "Bearer"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "Bearer"),
        ({"Authorization": "Bearer "}, 401, "Bearer"),
        ({"Authorization": "Bearer wrong-token"}, 403, "wrong"),
    ],
)
def test_reload_needs_the_right_token(
    make_app: Callable[..., FastAPI], tmp_path: Path, headers: dict, status: int, word: str
) -> None:
    opened: list[Path] = []
    with TestClient(_admin_app(make_app, tmp_path, opened.append)) as client:
        response = client.post("/v1/admin/reload", headers=headers)
    assert response.status_code == status
    assert word in response.json()["detail"]
    assert opened == []


def test_reload_swaps_in_the_new_index(
    make_app: Callable[..., FastAPI],
    tmp_path: Path,
    products: list[Product],
    encoder: FakeEncoder,
    index: FakeIndex,
) -> None:
    newer = FakeIndex(products[:10], encoder)
    opened: list[Path] = []

    def opener(path: Path) -> FakeIndex:
        opened.append(path)
        return newer

    with TestClient(_admin_app(make_app, tmp_path, opener)) as client:
        assert client.get("/readyz").json()["products"] == 48
        response = client.post("/v1/admin/reload", headers=AUTH)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["status"], body["products"], body["previous_products"]) == ("reloaded", 10, 48)
        assert opened == [tmp_path / "index"]
        assert client.get("/readyz").json()["products"] == 10
        assert client.get(f"/v1/products/{products[20].id}").status_code == 404
        metrics = client.get("/metrics").text
        assert 'fashion_index_reloads_total{outcome="ok"} 1.0' in metrics
        assert "fashion_index_products 10.0" in metrics
    assert not index.closed  # lent by the caller: not the app's to close
    assert newer.closed  # opened by the app: closed at shutdown


@pytest.mark.parametrize("problem", ["missing", "other-model"])
def test_failed_reload_keeps_serving_the_old_index(
    make_app: Callable[..., FastAPI],
    tmp_path: Path,
    products: list[Product],
    encoder: FakeEncoder,
    problem: str,
) -> None:
    other = FakeIndex(products[:5], encoder, model_id="another-model")

    def opener(path: Path) -> FakeIndex:
        if problem == "missing":
            raise FileNotFoundError(f"no published index in {path}")
        return other

    with TestClient(_admin_app(make_app, tmp_path, opener)) as client:
        response = client.post("/v1/admin/reload", headers=AUTH)
        assert response.status_code == 409
        detail = response.json()["detail"]
        assert "still serving the previous index" in detail
        assert ("no published index" if problem == "missing" else "another-model") in detail
        assert client.get("/readyz").json()["products"] == 48
        assert client.post("/v1/search/text", json={"query": "shirt"}).status_code == 200
    assert other.closed == (problem == "other-model")


@pytest.mark.anyio
async def test_reload_during_a_stream_of_queries_fails_none(
    make_app: Callable[..., FastAPI],
    tmp_path: Path,
    products: list[Product],
    encoder: FakeEncoder,
) -> None:
    """Searches are slow (so many are in flight at each swap); a request that touched a
    closed index would fail: none may."""
    encoder.delay_s = 0.002
    versions: list[FakeIndex] = []

    def opener(path: Path) -> FakeIndex:
        versions.append(FakeIndex(products[: 40 - len(versions)], encoder, search_delay_s=0.01))
        return versions[-1]

    app = _admin_app(make_app, tmp_path, opener)
    statuses: list[int] = []
    stop = asyncio.Event()

    async with running(app) as client:

        async def query_loop(n: int) -> None:
            while not stop.is_set():
                target = "image" if n % 2 else "text"
                response = await client.post(
                    "/v1/search/text", json={"query": f"shirt {n}", "k": 5, "target": target}
                )
                statuses.append(response.status_code)
                product = await client.get(f"/v1/products/{products[0].id}")
                statuses.append(product.status_code)

        queries = [asyncio.create_task(query_loop(n)) for n in range(12)]
        for _ in range(5):
            await asyncio.sleep(0.05)
            response = await client.post("/v1/admin/reload", headers=AUTH)
            assert response.status_code == 200, response.text
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*queries)
    assert len(statuses) > 50
    assert set(statuses) == {200}
    assert all(v.closed for v in versions)  # retired ones once idle, the last at shutdown
