"""Shared fixtures: the bundled sample catalogue, tiny catalogues written to tmp_path,
the tiny training config and a tiny seeded model artifact. Everything runs on CPU and
never touches the network or ../shared."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from indexer.gpu import gpu_count
from indexer.manifest import MANIFEST_NAME, PRODUCTS_INDEX
from indexer.publish import resolve_version_dir
from models import (
    ImageEncoderConfig,
    JointModel,
    ModelConfig,
    PreprocessConfig,
    TextEncoderConfig,
    build_model,
    load_model,
    read_catalog,
    save_artifact,
)
from training.config import TrainConfig, load_config

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO / "data" / "sample"

# A tiny CNN + Bi-LSTM: builds in milliseconds, encodes 1,000 photos in well under a second.
TINY_MODEL_CONFIG = ModelConfig(
    image=ImageEncoderConfig(name="tiny_cnn", pretrained=False, channels=8),
    text=TextEncoderConfig(
        name="bilstm", pretrained=False, word_dim=16, hidden_dim=16, max_length=32
    ),
    preprocess=PreprocessConfig(height=32, width=24),
    embed_dim=32,
)
TINY_MODEL_SEED = 1234

TinyCatalog = Callable[..., Path]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `gpu` need a CUDA GPU that FAISS sees (the gpu extra, faiss-gpu):
    elsewhere they skip, saying so; `pytest -m gpu` runs just them on a GPU machine."""
    if gpu_count() > 0:
        return
    skip = pytest.mark.skip(
        reason="needs a CUDA GPU that FAISS sees (faiss-gpu, the gpu extra); "
        "run `pytest -m gpu` on a GPU machine"
    )
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


# Tiny models gain nothing from threads, and on a busy shared machine OpenMP's spinning
# threads make each small op many times slower; one thread keeps the suite fast.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def subprocess_env() -> dict[str, str]:
    """Environment for CLI subprocesses: one thread each, offline, no GPU."""
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def _read_sample_rows() -> list[dict[str, str]]:
    with (SAMPLE_DIR / "catalog.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def sample_rows() -> list[dict[str, str]]:
    """The bundled sample catalogue's rows as dicts, in file order (image paths relative
    to `sample_dir`); a fresh list per test, so tests may edit it."""
    return _read_sample_rows()


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """data/sample: catalog.csv and images/."""
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def sample_catalog() -> Path:
    """Path of the bundled sample catalogue (1,000 real products, 60x80 JPEGs)."""
    return SAMPLE_DIR / "catalog.csv"


@pytest.fixture
def tiny_catalog(tmp_path: Path) -> TinyCatalog:
    """Factory: `tiny_catalog(n=32, distinct_titles=False, fmt="csv", rows=None)` writes
    the first `n` sample rows (or the given `rows`, image paths relative to the sample
    folder) with their images copied into a new folder under tmp_path, and returns the
    catalogue file's path. `distinct_titles` keeps only the first row of each title.
    `fmt` is "csv" or "jsonl". Rows whose image is missing are written without it.
    """
    made = 0

    def make(
        n: int = 32,
        *,
        distinct_titles: bool = False,
        fmt: str = "csv",
        rows: list[dict[str, str]] | None = None,
    ) -> Path:
        nonlocal made
        made += 1
        if rows is None:
            rows, titles = [], set()
            for row in _read_sample_rows():
                if distinct_titles and row["text"] in titles:
                    continue
                titles.add(row["text"])
                rows.append(row)
                if len(rows) == n:
                    break
        folder = tmp_path / f"catalog-{made}"
        (folder / "images").mkdir(parents=True)
        for row in rows:
            source = SAMPLE_DIR / row["image"]
            if source.is_file():
                shutil.copy(source, folder / row["image"])
        if fmt == "jsonl":
            path = folder / "catalog.jsonl"
            path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        elif fmt == "csv":
            path = folder / "catalog.csv"
            with path.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        else:
            raise ValueError(f"fmt must be 'csv' or 'jsonl', not {fmt!r}")
        return path

    return make


@pytest.fixture(scope="session")
def tiny_model_config() -> ModelConfig:
    """The architecture of `tiny_model_dir`: tiny CNN (32x24 input) + Bi-LSTM, embed_dim 32."""
    return TINY_MODEL_CONFIG


@pytest.fixture
def tiny_config() -> TrainConfig:
    """training/configs/tiny.toml: a seconds-long CPU config (tiny CNN + small Bi-LSTM)."""
    return load_config("tiny")


@pytest.fixture(scope="session")
def make_tiny_model_dir() -> Callable[[Path], Path]:
    """Factory: `make_tiny_model_dir(directory)` writes the `tiny_model_dir` artifact
    afresh into `directory` (without touching the global RNG) and returns it."""

    def make(directory: Path) -> Path:
        texts = [product.text for product in read_catalog(SAMPLE_DIR / "catalog.csv").products]
        with torch.random.fork_rng(devices=[]):  # leave the global RNG as the test found it
            torch.manual_seed(TINY_MODEL_SEED)
            model = build_model(TINY_MODEL_CONFIG, texts)
        save_artifact(model, directory, metrics={"config": "tests-tiny", "epoch": 0})
        return directory

    return make


@pytest.fixture(scope="session")
def tiny_model_dir(
    tmp_path_factory: pytest.TempPathFactory, make_tiny_model_dir: Callable[[Path], Path]
) -> Path:
    """An untrained, seeded tiny model artifact (tiny CNN + Bi-LSTM, 32x24 input,
    embed_dim 32) whose vocabulary covers the sample catalogue's titles. Same model id
    on every run; built in milliseconds on CPU.

    Shared by the whole session: treat it as read-only (copy it to damage or extend it).
    """
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny-model") / "model")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path) -> JointModel:
    """`load_model(tiny_model_dir, device="cpu")`, shared by the session: do not train or
    save it (saving sets its model id)."""
    return load_model(tiny_model_dir, device="cpu")


@pytest.fixture(scope="session")
def make_legacy_index() -> Callable[[Path, Path], Path]:
    """Factory: `make_legacy_index(index_dir, out_dir)` copies a built index to out_dir
    as an index built before product vectors existed: no products.faiss, and no
    `product_weights` in its manifest (the files' checksums still agree). Returns out_dir."""

    def make(index_dir: Path, out_dir: Path) -> Path:
        shutil.copytree(index_dir, out_dir)
        version = resolve_version_dir(out_dir)
        (version / PRODUCTS_INDEX).unlink()
        manifest = json.loads((version / MANIFEST_NAME).read_text("utf-8"))
        del manifest["product_weights"], manifest["files"][PRODUCTS_INDEX]
        (version / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), "utf-8")
        return out_dir

    return make
