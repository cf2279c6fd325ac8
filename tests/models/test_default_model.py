"""The bundled default model (models/default) is the one the README documents."""

from __future__ import annotations

import json

import pytest
from readme_model_id import documented_default_model_id

from models import DEFAULT_MODEL_DIR, load_model
from models.artifact import CHECKSUMS


def test_the_bundled_model_has_the_id_the_readme_documents(default_model_id: str) -> None:
    checksums = json.loads((DEFAULT_MODEL_DIR / CHECKSUMS).read_text())
    assert checksums["model_id"] == default_model_id
    model = load_model(device="cpu")  # verifies every file and borrowed tensor
    assert model.model_id == default_model_id
    assert model.encode_texts(["navy blue checked shirt for men"]).shape == (1, model.embed_dim)


def test_the_readme_id_is_read_from_the_paragraph_about_models_default() -> None:
    readme = (
        "Results: model `sha256-0000000000000000` scored ...\n\n"
        "The bundled default model (`models/default/`, 30 MB, id\n`sha256-0123456789abcdef`)"
        " reproduces with\n\n```sh\n...\n```\n"
    )
    assert documented_default_model_id(readme) == "sha256-0123456789abcdef"
    with pytest.raises(AssertionError, match="found none"):
        documented_default_model_id("The bundled model lives in models/default.\n")
