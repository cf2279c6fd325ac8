"""Fixtures of the service tests: fake model and index, apps and clients."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from app_fakes import ADMIN_TOKEN, FakeEncoder, FakeIndex, make_settings, sample_products
from app_live import LiveServer, free_port, serve_command, server_env, start_server
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app import create_app
from indexer import build_index
from models.catalog import Product


@pytest.fixture(autouse=True)
def _no_fashion_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from each test, never from the environment running the suite."""
    for name in list(os.environ):
        if name.startswith("FASHION_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def products() -> list[Product]:
    return sample_products(48)


@pytest.fixture
def encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def index(products: list[Product], encoder: FakeEncoder) -> FakeIndex:
    return FakeIndex(products, encoder)


@pytest.fixture
def make_app(tmp_path: Path, encoder: FakeEncoder, index: FakeIndex) -> Callable[..., FastAPI]:
    def make(*, open_index: Callable[[Path], object] | None = None, **groups: dict) -> FastAPI:
        settings = make_settings(tmp_path, **groups)
        return create_app(settings, model=encoder, index=index, open_index=open_index)

    return make


@pytest.fixture
def client(make_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    with TestClient(make_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def real_index_dir(
    tmp_path_factory: pytest.TempPathFactory, tiny_model, sample_catalog: Path
) -> Path:  # type: ignore[no-untyped-def]
    """The bundled sample catalogue (1,000 products) indexed with the tiny model.
    Shared by the session: read-only."""
    out = tmp_path_factory.mktemp("real-index") / "index"
    build_index(sample_catalog, tiny_model, out, progress=False)
    return out


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_model_dir: Path,
    real_index_dir: Path,
    subprocess_env: dict[str, str],
) -> Iterator[LiveServer]:
    """`fashion-retrieval serve` in a real process on 127.0.0.1, serving the sample
    catalogue with the tiny model; the admin token is ADMIN_TOKEN. Read-only tests."""
    port = free_port()
    command = serve_command(
        "--index",
        str(real_index_dir),
        "--model",
        str(tiny_model_dir),
        "--port",
        str(port),
        "--device",
        "cpu",
    )
    env = server_env(subprocess_env, FASHION_ADMIN__TOKEN=ADMIN_TOKEN)
    log = tmp_path_factory.mktemp("live-server") / "server.log"
    server = start_server(command, env=env, log=log, port=port)
    yield server
    code = server.stop()
    assert code == 130, server.output()  # Ctrl+C: a graceful shutdown, then 130
