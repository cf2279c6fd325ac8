"""Indexer fixtures: a deterministic fake encoder, small catalogues, built indices, and a
brute-force numpy reference to check searches against."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from indexer_fakes import DIM, FakeEncoder, sample_rows, write_catalog

from indexer import build_index


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder(dim=DIM)


MakeCatalog = Callable[..., Path]


@pytest.fixture
def make_catalog(tmp_path: Path) -> MakeCatalog:
    """Factory: make_catalog(n or rows, name) writes the first n sample rows (or the given
    rows) with their images into tmp_path/name and returns the catalogue's path."""
    rows = sample_rows()

    def make(chosen: int | list[dict[str, str]], name: str) -> Path:
        return write_catalog(tmp_path / name, rows[:chosen] if isinstance(chosen, int) else chosen)

    return make


@pytest.fixture
def small_catalog(make_catalog: MakeCatalog) -> Path:
    """60 sample products with their images, in tmp_path/small."""
    return make_catalog(60, "small")


@pytest.fixture
def built_index(tmp_path: Path, small_catalog: Path, fake_encoder: FakeEncoder) -> Path:
    """An index directory built from small_catalog with the fake encoder."""
    out = tmp_path / "index"
    build_index(small_catalog, fake_encoder, out, progress=False)
    return out
