"""The service reports the installed package's version (pyproject.toml's), not a copy."""

from __future__ import annotations

import importlib.metadata
import tomllib
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

REPO = Path(__file__).resolve().parents[2]


def test_the_openapi_version_is_the_package_version(make_app: Callable[..., FastAPI]) -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert importlib.metadata.version("fashion-retrieval") == declared
    assert make_app().openapi()["info"]["version"] == declared
