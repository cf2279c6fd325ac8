"""The service's hubness correction: which queries it corrects, and the index it sets up."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from app_fakes import FakeIndex, image_bytes, make_settings, running
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.loading import prepare
from app.main import create_app
from models import load_model, read_catalog
from models.artifact import write_photo_bank, write_query_bank


@pytest.fixture
def corrected_index(index: FakeIndex) -> FakeIndex:
    index.hubness_targets = ("image", "product", "text")
    return index


@pytest.mark.parametrize(
    ("query", "target", "corrected"),
    [
        ("navy blue shirts", "image", True),  # three words: one product's description
        ("Nike Men Navy Blue Running Shoes", "product", True),
        ("Tshirts", "image", False),  # a kind of product
        ("navy   blue", "product", False),
        ("navy blue shirts", "text", False),  # titles are measured against photos
    ],
)
def test_long_text_queries_over_photos_and_products_are_corrected(
    make_app, corrected_index: FakeIndex, query: str, target: str, corrected: bool
) -> None:  # type: ignore[no-untyped-def]
    with TestClient(make_app()) as client:
        response = client.post("/v1/search/text", json={"query": query, "k": 3, "target": target})
    assert response.status_code == 200, response.text
    assert corrected_index.corrected == [corrected]


def test_min_words_is_a_setting(make_app, corrected_index: FakeIndex) -> None:  # type: ignore[no-untyped-def]
    app = make_app(ranking={"hubness_min_words": 1})
    with TestClient(app) as client:
        assert client.post("/v1/search/text", json={"query": "Tshirts"}).status_code == 200
    assert corrected_index.corrected == [True]


@pytest.mark.parametrize(
    ("target", "corrected"), [("text", True), ("image", False), ("product", False)]
)
def test_uploads_are_corrected_over_titles_only(
    make_app, corrected_index: FakeIndex, target: str, corrected: bool
) -> None:  # type: ignore[no-untyped-def]
    with TestClient(make_app()) as client:
        files = {"file": ("q.jpeg", image_bytes(), "image/jpeg")}
        response = client.post("/v1/search/image", files=files, data={"target": target})
    assert response.status_code == 200, response.text
    assert corrected_index.corrected == [corrected]


def test_an_index_without_hubness_is_never_asked_to_correct(make_app, index: FakeIndex) -> None:  # type: ignore[no-untyped-def]
    with TestClient(make_app()) as client:
        assert client.post("/v1/search/text", json={"query": "navy blue shirts"}).status_code == 200
    assert index.corrected == [False]


@pytest.fixture
def banked_model_dir(tmp_path: Path, tiny_model_dir: Path, sample_catalog: Path) -> Path:
    """The tiny model with a query bank and a photo bank: the same model id (the banks
    are not part of it)."""
    directory = shutil.copytree(tiny_model_dir, tmp_path / "model")
    products = read_catalog(sample_catalog).products[:200]
    write_query_bank(directory, [p.text for p in products])
    model = load_model(directory, device="cpu")
    write_photo_bank(directory, model.encode_images([p.image for p in products[:50]]))
    return directory


@pytest.mark.parametrize(("alpha", "measured"), [(0.5, ("image", "product", "text")), (0.0, ())])
def test_the_service_measures_hubness_with_the_models_bank(
    tmp_path: Path, banked_model_dir: Path, real_index_dir: Path, alpha: float, measured
) -> None:  # type: ignore[no-untyped-def]
    model = load_model(banked_model_dir, device="cpu")
    assert len(model.query_bank) == 200 and model.photo_bank is not None
    settings = make_settings(
        tmp_path, index={"path": real_index_dir, "device": "cpu"}, ranking={"hubness_alpha": alpha}
    )
    serving = prepare(settings, model=model)
    try:
        assert serving.index.hubness_targets == measured
        reopened = serving.open_index(real_index_dir)  # what a reload opens
        assert reopened.hubness_targets == measured
        reopened.close()
    finally:
        serving.index.close()


@pytest.mark.anyio
async def test_a_model_without_a_bank_serves_plain_cosine(
    tmp_path: Path, tiny_model, real_index_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    assert tiny_model.query_bank == []
    settings = make_settings(tmp_path, index={"path": real_index_dir, "device": "cpu"})
    app: FastAPI = create_app(settings, model=tiny_model)
    async with running(app) as client:
        response = await client.post("/v1/search/text", json={"query": "navy blue shirts"})
        assert response.status_code == 200
        assert app.state.service.holder.current.hubness_targets == ()
