"""In-process stand-ins for the model and the index, shaped like `models.load_model`'s
and `indexer.open_index`'s results. Imported by conftest.py and by serve_fake.py (which
runs them under a real uvicorn process)."""

from __future__ import annotations

import io
import random
import threading
import time
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
from fastapi import FastAPI
from PIL import Image

from app.settings import Settings
from models.catalog import Product, read_catalog
from models.fusion import fuse
from models.images import open_image

REPO = Path(__file__).resolve().parents[2]
SAMPLE_CATALOG = REPO / "data" / "sample" / "catalog.csv"
ADMIN_TOKEN = "test-admin-token"


@dataclass(frozen=True)
class Hit:
    id: str
    score: float


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


class FakeEncoder:
    """Bag-of-hashed-words text vectors and thumbnail image vectors, L2-normalised.

    Records each call's batch size; `delay_s` makes each call slow (like a real model)."""

    def __init__(self, *, model_id: str = "fake-model-1", dim: int = 32, delay_s: float = 0.0):
        self.model_id = model_id
        self.embed_dim = dim
        self.delay_s = delay_s
        self.batches: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def _record(self, kind: str, n: int) -> None:
        with self._lock:
            self.batches.append((kind, n))
        if self.delay_s:
            time.sleep(self.delay_s)

    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        self._record("text", len(texts))
        rows = []
        for text in texts:
            vector = np.zeros(self.embed_dim)
            for word in text.lower().split():
                rng = np.random.default_rng(zlib.crc32(word.encode()))
                vector += rng.standard_normal(self.embed_dim)
            rows.append(_unit(vector if vector.any() else np.ones(self.embed_dim)))
        return np.stack(rows).reshape(len(texts), self.embed_dim)

    def encode_images(self, images: Sequence[object], batch_size: int = 64) -> np.ndarray:
        self._record("image", len(images))
        rows = []
        for image in images:
            picture = open_image(image)  # type: ignore[arg-type]
            thumb = np.asarray(picture.resize((4, 4)), dtype=np.float64).ravel() / 255.0
            vector = np.resize(thumb - 0.5, self.embed_dim) + 1e-3
            rows.append(_unit(vector))
        return np.stack(rows).reshape(len(images), self.embed_dim)


class FakeIndex:
    """Brute-force search over a few products; `closed` once closed, and then unusable,
    so a test notices a request that uses an index after a reload closed it."""

    def __init__(
        self,
        products: Sequence[Product],
        encoder: FakeEncoder,
        *,
        model_id: str | None = None,
        search_delay_s: float = 0.0,
        with_products: bool = True,
    ) -> None:
        """`with_products=False`: like an index built before product vectors existed."""
        self.products = {p.id: p for p in products}
        self._ids = [p.id for p in products]
        self._vectors = {
            "image": encoder.encode_images([p.image for p in products]),
            "text": encoder.encode_texts([p.text for p in products]),
        }
        if with_products:
            self._vectors["product"] = fuse(self._vectors["image"], self._vectors["text"])
        self.targets = tuple(self._vectors)
        self.manifest = SimpleNamespace(model_id=model_id or encoder.model_id, count=len(products))
        self.search_delay_s = search_delay_s
        self.closed = False
        # Set it to pretend the index measured hubness; `corrected` records each search's flag.
        self.hubness_targets: tuple[str, ...] = ()
        self.corrected: list[bool] = []

    def __len__(self) -> int:
        return len(self._ids)

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("FakeIndex used after close()")

    def _allowed(self, filters: Mapping[str, object] | None) -> np.ndarray:
        allowed = np.ones(len(self._ids), dtype=bool)
        known = self.attribute_values()
        for name, wanted in (filters or {}).items():
            if name not in known:
                raise KeyError(f"unknown attribute {name!r}")
            values = {wanted} if isinstance(wanted, str) else set(wanted)  # type: ignore[arg-type]
            allowed &= np.array(
                [self.products[i].attributes.get(name) in values for i in self._ids]
            )
        return allowed

    def _search(self, matrix: np.ndarray, vectors: np.ndarray, k: int, filters) -> list[list[Hit]]:
        self._check_open()
        if self.search_delay_s:
            time.sleep(self.search_delay_s)
        allowed = self._allowed(filters)
        results = []
        for scores in np.asarray(vectors) @ matrix.T:
            scores = np.where(allowed, scores, -np.inf)
            order = [i for i in np.argsort(-scores, kind="stable")[:k] if allowed[i]]
            results.append([Hit(self._ids[i], float(scores[i])) for i in order])
        self._check_open()
        return results

    def search(
        self, vectors: np.ndarray, k: int, filters=None, *, target, corrected: bool = False
    ) -> list[list[Hit]]:
        self.corrected.extend([corrected] * len(vectors))
        return self._search(self._vectors[target], vectors, k, filters)

    def search_images(self, vectors: np.ndarray, k: int, filters=None) -> list[list[Hit]]:
        return self.search(vectors, k, filters, target="image")

    def search_texts(self, vectors: np.ndarray, k: int, filters=None) -> list[list[Hit]]:
        return self.search(vectors, k, filters, target="text")

    def similar(self, product_id: str, k: int, filters=None, *, target) -> list[Hit]:
        """Nearest to the product's own vector, without it and products of the same photo."""
        own = self.products[product_id]
        matrix = self._vectors[target]
        rows = self._search(
            matrix, matrix[self._ids.index(product_id)][None], len(self._ids), filters
        )
        same = {
            i for i, p in self.products.items() if p.image.read_bytes() == own.image.read_bytes()
        }
        return [hit for hit in rows[0] if hit.id not in same][:k]

    def get_products(self, ids: Sequence[str]) -> list[Product | None]:
        self._check_open()
        return [self.products.get(i) for i in ids]

    def attribute_values(self) -> dict[str, list[str]]:
        values: dict[str, set[str]] = {}
        for product in self.products.values():
            for name, value in product.attributes.items():
                values.setdefault(name, set()).add(value)
        return {name: sorted(v) for name, v in values.items()}

    def close(self) -> None:
        self.closed = True


def sample_products(n: int = 48, *, seed: int = 0) -> list[Product]:
    """`n` products of the bundled sample catalogue, always the same ones."""
    products = read_catalog(SAMPLE_CATALOG).products
    return random.Random(seed).sample(products, n)


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (60, 80), mode: str = "RGB") -> bytes:
    """A small picture in the given format."""
    colour = (200, 30, 30, 128) if mode == "RGBA" else (200, 30, 30)
    image = Image.new(mode, size, colour[: len(mode)] if mode != "L" else 128)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def make_settings(tmp_path: Path, **groups: dict[str, object]) -> Settings:
    """Settings for a test: the sample index dir under tmp_path, plus `groups`."""
    index = {"sample_dir": tmp_path / "sample-index", **groups.pop("index", {})}
    return Settings(index=index, **groups)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process async client of `app`, its lifespan entered (ASGITransport skips it)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
