"""The search service: encode a query (micro-batched), search the index, fill in products.

Routes call `search_text` / `search_image`; everything slow runs in worker threads so
the event loop keeps answering other requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any
from urllib.parse import quote

import numpy as np
from PIL import Image

from app.batcher import MicroBatcher
from app.errors import InvalidFiltersError
from app.holder import IndexHolder
from app.metrics import Metrics
from app.protocols import Encoder, SearchIndex
from app.schemas import SearchResponse, SearchResult, Target
from app.settings import BatchingSettings, LimitSettings
from models.images import open_image


def image_url(product_id: str) -> str:
    return f"/v1/products/{quote(product_id, safe='')}/image"


class SearchService:
    def __init__(
        self,
        model: Encoder,
        holder: IndexHolder,
        metrics: Metrics,
        *,
        batching: BatchingSettings,
        limits: LimitSettings | None = None,
    ) -> None:
        self.model = model
        self.holder = holder
        self.metrics = metrics
        limits = limits or LimitSettings()
        self._max_image_pixels = limits.max_image_pixels
        # One encoding thread: batches take turns on the cores instead of fighting for them.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode")
        # Decoding a large upload takes memory and a core for a while: a few at a time,
        # so that a burst of photos cannot take all the memory or starve text queries.
        self._decoder = ThreadPoolExecutor(
            max_workers=limits.max_concurrent_decodes, thread_name_prefix="decode"
        )
        wait_s = batching.max_wait_ms / 1000.0
        self._texts: MicroBatcher[str] = MicroBatcher(
            model.encode_texts,
            executor=self._executor,
            max_batch_size=batching.max_batch_size,
            max_wait_s=wait_s,
            on_batch=lambda n, s: metrics.observe_encode("text", n, s),
        )
        self._images: MicroBatcher[Image.Image] = MicroBatcher(
            model.encode_images,
            executor=self._executor,
            max_batch_size=batching.max_batch_size,
            max_wait_s=wait_s,
            on_batch=lambda n, s: metrics.observe_encode("image", n, s),
        )
        self._facets: tuple[SearchIndex, dict[str, list[str]]] | None = None

    def start(self) -> None:
        self._texts.start()
        self._images.start()

    async def stop(self) -> None:
        await self._texts.stop()
        await self._images.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._decoder.shutdown(wait=False, cancel_futures=True)

    @property
    def model_id(self) -> str:
        return self.model.model_id

    def facets(self, index: SearchIndex) -> dict[str, list[str]]:
        """Attribute values of `index`, computed once per index."""
        cached = self._facets
        if cached is None or cached[0] is not index:
            cached = (index, dict(index.attribute_values()))
            self._facets = cached
        return cached[1]

    async def search_text(
        self, query: str, *, k: int, target: Target, filters: Mapping[str, Any] | None
    ) -> SearchResponse:
        started = time.perf_counter()
        with self.holder.lease() as index:
            self._check_filters(index, filters)
            vector = await self._texts.submit(query)
            return await self._search(index, vector, started, k=k, target=target, filters=filters)

    async def search_image(
        self, data: bytes, *, k: int, target: Target, filters: Mapping[str, Any] | None
    ) -> SearchResponse:
        """`data`: the uploaded file; raises models.errors.ImageDecodeError when it is not
        a complete image of an accepted format within the pixel budget."""
        started = time.perf_counter()
        with self.holder.lease() as index:
            self._check_filters(index, filters)
            image = await self.decode(data)
            vector = await self._images.submit(image)
            return await self._search(index, vector, started, k=k, target=target, filters=filters)

    async def decode(self, data: bytes) -> Image.Image:
        """An upload -> upright RGB image, in the bounded pool of decoding threads."""
        decode = partial(open_image, data, max_pixels=self._max_image_pixels)
        return await asyncio.get_running_loop().run_in_executor(self._decoder, decode)

    async def _search(
        self,
        index: SearchIndex,
        vector: np.ndarray,
        started: float,
        *,
        k: int,
        target: Target,
        filters: Mapping[str, Any] | None,
    ) -> SearchResponse:
        results = await asyncio.to_thread(self._search_sync, index, vector, k, target, filters)
        took_ms = (time.perf_counter() - started) * 1000.0
        return SearchResponse(results=results, took_ms=round(took_ms, 3), model=self.model_id)

    def _search_sync(
        self,
        index: SearchIndex,
        vector: np.ndarray,
        k: int,
        target: Target,
        filters: Mapping[str, Any] | None,
    ) -> list[SearchResult]:
        search = index.search_images if target == "image" else index.search_texts
        started = time.perf_counter()
        hits = search(np.asarray(vector, dtype=np.float32).reshape(1, -1), k, filters)[0]
        self.metrics.search_seconds.labels(target).observe(time.perf_counter() - started)
        products = index.get_products([hit.id for hit in hits])
        return [
            SearchResult(
                id=product.id,
                score=float(hit.score),
                text=product.text,
                image_url=image_url(product.id),
                attributes=dict(product.attributes),
            )
            for hit, product in zip(hits, products, strict=True)
            if product is not None  # deleted between search and lookup
        ]

    def _check_filters(self, index: SearchIndex, filters: Mapping[str, Any] | None) -> None:
        if not filters:
            return
        known = self.facets(index)
        unknown = sorted(set(filters) - set(known))
        if unknown:
            raise InvalidFiltersError(
                f"unknown filter attribute{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(u) for u in unknown)}; "
                f"the catalogue has: {', '.join(sorted(known)) or 'no attributes'}"
            )
