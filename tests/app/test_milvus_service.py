"""The service over a Milvus index (Milvus Lite): every route answers as it does over
the FAISS index of the same catalogue; /readyz is 503 while Milvus is down and recovers
by itself; replicas pick up a new version on reload."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from app_fakes import ADMIN_TOKEN, FakeEncoder, make_settings
from fastapi import FastAPI
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "indexer"))

from indexer_fakes import sample_rows, write_catalog
from milvus_support import MilvusLiteServer, release_local

from app import create_app
from indexer import build_index
from indexer.milvus import MilvusLocation, build_milvus_index

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
COLLECTION = "shop"
RECOVERY_TRIES = 100  # x 0.1 s: how long /readyz may take to see Milvus back


@pytest.fixture(scope="module")
def encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [dict(row) for row in sample_rows()[:48]]
    rows[3]["gender"] = '" or id != "'  # a hostile value stored as data
    return write_catalog(tmp_path_factory.mktemp("catalog"), rows)


@pytest.fixture(scope="module")
def indexes(
    tmp_path_factory: pytest.TempPathFactory, catalog: Path, encoder: FakeEncoder
) -> Iterator[tuple[Path, Path]]:
    """(FAISS index directory, Milvus Lite file) of the same catalogue."""
    root = tmp_path_factory.mktemp("indexes")
    build_index(catalog, encoder, root / "faiss", progress=False)
    db = root / "milvus.db"
    build_milvus_index(catalog, encoder, MilvusLocation(str(db), COLLECTION), progress=False)
    yield root / "faiss", db
    release_local(db)


def faiss_app(tmp_path: Path, index_dir: Path, encoder: FakeEncoder) -> FastAPI:
    settings = make_settings(
        tmp_path, index={"path": index_dir, "device": "cpu"}, admin={"token": ADMIN_TOKEN}
    )
    return create_app(settings, model=encoder)


def milvus_app(tmp_path: Path, uri: str, encoder: FakeEncoder) -> FastAPI:
    index = {"backend": "milvus", "milvus_uri": uri, "collection": COLLECTION}
    settings = make_settings(tmp_path, index=index, admin={"token": ADMIN_TOKEN})
    return create_app(settings, model=encoder)


def requests_of_every_route(catalog: Path) -> list[tuple[str, str, dict[str, Any]]]:
    rows = sample_rows()[:48]
    photo = (catalog.parent / rows[5]["image"]).read_bytes()
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("get", "/healthz", {}),
        ("get", "/readyz", {}),
        ("get", "/v1/facets", {}),
        ("get", "/", {}),
        ("get", f"/v1/products/{rows[0]['id']}", {}),
        ("get", f"/v1/products/{rows[0]['id']}/image", {}),
        ("get", "/v1/products/no-such-id", {}),
        ("get", f"/v1/products/{rows[1]['id']}/similar?k=5&target=product&gender=Men", {}),
        ("get", f"/v1/products/{rows[2]['id']}/similar?k=7&target=text", {}),
        ("get", "/v1/products/no-such-id/similar", {}),
        ("post", "/v1/admin/reload", {"headers": auth}),
    ]
    for target in ("image", "text", "product"):
        for filters in (None, {"gender": "Men"}, {"gender": ["Men", '" or id != "']}):
            body = {"query": "blue shirt for men", "k": 8, "target": target, "filters": filters}
            calls.append(("post", "/v1/search/text", {"json": body}))
        files = {"file": ("photo.jpg", photo, "image/jpeg")}
        data = {"k": "6", "target": target, "filters": json.dumps({"gender": "Women"})}
        calls.append(("post", "/v1/search/image", {"files": files, "data": data}))
    bad = [
        {"query": "shirt", "filters": {"colour": "Red"}},  # unknown attribute: 422
        {"query": "shirt", "k": 0},
        {"query": "shirt", "filters": {"gender": 'Men" or id != "'}},  # no product: []
    ]
    calls += [("post", "/v1/search/text", {"json": body}) for body in bad]
    return calls


def comparable(response: Any) -> Any:
    """The part of an answer both backends must agree on (scores rounded, no timings)."""
    kind = response.headers.get("content-type", "")
    if not kind.startswith("application/json"):
        return response.status_code, response.content if "image" in kind else len(response.text) > 0
    body = response.json()
    if isinstance(body, dict):
        body.pop("took_ms", None)
        for result in body.get("results", []):
            result["score"] = round(result["score"], 4)
    return response.status_code, body


def test_every_route_answers_as_over_faiss(
    tmp_path: Path, indexes: tuple[Path, Path], catalog: Path, encoder: FakeEncoder
) -> None:
    faiss_dir, db = indexes
    with (
        TestClient(faiss_app(tmp_path, faiss_dir, encoder)) as over_faiss,
        TestClient(milvus_app(tmp_path, str(db), encoder)) as over_milvus,
    ):
        for method, path, kwargs in requests_of_every_route(catalog):
            expected = getattr(over_faiss, method)(path, **kwargs)
            got = getattr(over_milvus, method)(path, **kwargs)
            assert comparable(got) == comparable(expected), (method, path, kwargs)
            if path == "/v1/search/text" and "json" in kwargs:
                assert got.status_code in (200, 422)
        assert over_milvus.get("/metrics").status_code == 200
        hostile = over_milvus.post(
            "/v1/search/text", json={"query": "x", "filters": {"gender": '" or id != "'}}
        )
        assert [r["id"] for r in hostile.json()["results"]] == [sample_rows()[3]["id"]]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MilvusLiteServer]:
    running = MilvusLiteServer(tmp_path / "milvus-data").start()
    yield running
    running.stop()


def eventually_ready(client: TestClient) -> Any:
    for _ in range(RECOVERY_TRIES):
        response = client.get("/readyz")
        if response.status_code == 200:
            return response
        time.sleep(0.1)
    return response


@pytest.mark.slow
def test_readyz_is_503_while_milvus_is_down_and_recovers_by_itself(
    tmp_path: Path, server: MilvusLiteServer, catalog: Path, encoder: FakeEncoder
) -> None:
    build_milvus_index(catalog, encoder, MilvusLocation(server.uri, COLLECTION), progress=False)
    query = {"query": "blue shirt", "k": 5}
    with TestClient(milvus_app(tmp_path, server.uri, encoder)) as client:
        assert client.get("/readyz").json()["products"] == 48
        before = client.post("/v1/search/text", json=query).json()["results"]
        server.stop()
        down = client.get("/readyz")
        assert down.status_code == 503 and "unreachable" in down.json()["detail"]
        failed = client.post("/v1/search/text", json=query)
        assert failed.status_code == 503 and "unavailable" in failed.json()["detail"]
        assert client.get("/healthz").status_code == 200  # alive: no restart needed
        server.start()
        assert eventually_ready(client).status_code == 200
        again = client.post("/v1/search/text", json=query)
        assert again.status_code == 200 and again.json()["results"] == before


@pytest.mark.slow
def test_two_replicas_pick_up_a_new_version_on_reload(
    tmp_path: Path, server: MilvusLiteServer, catalog: Path, encoder: FakeEncoder
) -> None:
    location = MilvusLocation(server.uri, COLLECTION)
    build_milvus_index(catalog, encoder, location, progress=False)
    smaller = write_catalog(tmp_path / "smaller", sample_rows()[100:120])
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with (
        TestClient(milvus_app(tmp_path, server.uri, encoder)) as first,
        TestClient(milvus_app(tmp_path, server.uri, encoder)) as second,
    ):
        assert first.get("/readyz").json()["products"] == 48
        build_milvus_index(smaller, encoder, location, progress=False)
        for replica in (first, second):
            assert replica.get("/readyz").json()["products"] == 48  # until it reloads
            reloaded = replica.post("/v1/admin/reload", headers=auth)
            assert reloaded.status_code == 200 and reloaded.json()["products"] == 20
            ids = {
                r["id"]
                for r in replica.post("/v1/search/text", json={"query": "bag", "k": 50}).json()[
                    "results"
                ]
            }
            assert ids == {row["id"] for row in sample_rows()[100:120]}
