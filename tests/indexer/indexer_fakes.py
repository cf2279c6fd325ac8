"""A deterministic fake encoder for indexer tests (no torch model, stable vectors), and a
brute-force numpy reference to check searches against.

Each image (by decoded pixels) and each text maps to a seeded random unit vector.
Environment switches, for tests that run a build in a subprocess:
  INDEXER_FAKE_SLEEP=seconds   sleep in every encode call (a slow build to kill)
  INDEXER_FAKE_TRACE=path      append one line per encode call to path
"""

from __future__ import annotations

import csv
import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.catalog import read_catalog
from models.images import open_image

DIM = 16

SAMPLE_CATALOG = Path(__file__).resolve().parents[2] / "data" / "sample" / "catalog.csv"
SLEEP_ENV = "INDEXER_FAKE_SLEEP"
TRACE_ENV = "INDEXER_FAKE_TRACE"


def unit_vector(data: bytes, dim: int, salt: str) -> np.ndarray:
    """A (dim,) float32 unit vector determined by salt and data."""
    seed = int.from_bytes(hashlib.sha256(salt.encode() + data).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


class FakeEncoder:
    """Shaped like models.JointModel for the indexer; counts what it encodes."""

    def __init__(self, dim: int = DIM, model_id: str = "fake-model-1") -> None:
        self.model_id = model_id
        self.embed_dim = dim
        self.images_encoded = 0
        self.texts_encoded = 0
        self.calls = 0

    def _tick(self, kind: str, count: int) -> None:
        self.calls += 1
        delay = float(os.environ.get(SLEEP_ENV, "0") or 0)
        if delay:
            time.sleep(delay)
        trace = os.environ.get(TRACE_ENV)
        if trace:
            with open(trace, "a", encoding="utf-8") as handle:
                handle.write(f"{kind} {count}\n")

    def encode_images(self, images: Sequence[Any], batch_size: int = 64) -> np.ndarray:
        self._tick("image", len(images))
        self.images_encoded += len(images)
        rows = [
            unit_vector(open_image(image).tobytes(), self.embed_dim, self.model_id + "/image")
            for image in images
        ]
        return np.stack(rows) if rows else np.zeros((0, self.embed_dim), np.float32)

    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        self._tick("text", len(texts))
        self.texts_encoded += len(texts)
        rows = [
            unit_vector(text.encode(), self.embed_dim, self.model_id + "/text") for text in texts
        ]
        return np.stack(rows) if rows else np.zeros((0, self.embed_dim), np.float32)


@dataclass
class Reference:
    """Exact vectors and attributes of a catalogue, for brute-force checks."""

    ids: list[str]
    images: np.ndarray  # (N, D) float32
    texts: np.ndarray  # (N, D) float32
    attributes: list[dict[str, str]]

    def products(self, weights: tuple[float, float] = (0.9, 0.1)) -> np.ndarray:
        """(N, D) product vectors, in float64: the normalised weighted sum of photo and title."""
        fused = weights[0] * self.images.astype(np.float64) + weights[1] * self.texts
        return fused / np.linalg.norm(fused, axis=1, keepdims=True)

    def search(
        self, kind: str, queries: np.ndarray, k: int, filters: dict | None = None
    ) -> list[list[tuple[str, float]]]:
        """Top-k (id, score) per query by exact inner product, within the filter; kind is
        "images", "texts" or "products" (default weights)."""
        vectors = {"images": self.images, "texts": self.texts}.get(kind)
        vectors = self.products() if vectors is None else vectors
        mask = np.ones(len(self.ids), dtype=bool)
        for name, wanted in (filters or {}).items():
            values = {wanted} if isinstance(wanted, str) else set(wanted)
            mask &= np.array([a.get(name) in values for a in self.attributes])
        rows = []
        for scores in queries @ vectors.T:
            order = [i for i in np.argsort(-scores, kind="stable") if mask[i]][:k]
            rows.append([(self.ids[i], float(scores[i])) for i in order])
        return rows


def reference_for(catalog_path: Path, encoder: FakeEncoder) -> Reference:
    products = read_catalog(catalog_path).products
    fresh = FakeEncoder(encoder.embed_dim, encoder.model_id)  # leave the counters alone
    return Reference(
        [p.id for p in products],
        fresh.encode_images([p.image for p in products]),
        fresh.encode_texts([p.text for p in products]),
        [dict(p.attributes) for p in products],
    )


def unit_queries(count: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    queries = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return queries / np.linalg.norm(queries, axis=1, keepdims=True)


def write_catalog(folder: Path, rows: list[dict[str, str]]) -> Path:
    """Write rows (image paths relative to the sample folder) as folder/catalog.csv, with
    their images copied into folder/images; returns the catalogue's path."""
    (folder / "images").mkdir(parents=True)
    for row in rows:
        source = SAMPLE_CATALOG.parent / row["image"]
        (folder / row["image"]).write_bytes(source.read_bytes())
    path = folder / "catalog.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def sample_rows() -> list[dict[str, str]]:
    """The bundled sample catalogue's rows (image paths relative to its folder)."""
    with SAMPLE_CATALOG.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))
