"""Fixtures of the models tests."""

from __future__ import annotations

import pytest
from readme_model_id import README, documented_default_model_id


@pytest.fixture(scope="session")
def default_model_id() -> str:
    """The id README.md documents for the bundled default model (models/default)."""
    return documented_default_model_id(README.read_text(encoding="utf-8"))
