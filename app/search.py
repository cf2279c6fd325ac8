"""The search service: encode a query (micro-batched), search the index, fill in products.

Routes call `search_text` / `search_image` / `similar`; everything slow runs in worker
threads so the event loop keeps answering other requests. Text-query embeddings are
kept in an LRU cache (app/query_cache.py), so a popular query is encoded once. The
queries of a batch are searched together (app/batch_search.py); an upload is decoded
and preprocessed once, in a decoding thread, and encoded from its pixels.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any
from urllib.parse import quote

import numpy as np

from app.batch_search import SearchJob, search_jobs
from app.batcher import MicroBatcher
from app.errors import ProductNotFoundError, TargetUnavailableError
from app.holder import IndexHolder
from app.metrics import Metrics
from app.protocols import Encoder, Hit, SearchIndex
from app.query_cache import QueryCache, normalise_query
from app.schemas import SearchResponse, SearchResult, Target
from app.settings import BatchingSettings, LimitSettings, RankingSettings
from indexer import CORRECTED_TARGETS
from indexer.filters import check_filters
from models.hubness import is_specific
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
        query_cache: QueryCache | None = None,
        ranking: RankingSettings | None = None,
    ) -> None:
        self.model = model
        self._min_words = (ranking or RankingSettings()).hubness_min_words
        self.holder = holder
        self.metrics = metrics
        self.query_cache = query_cache if query_cache is not None else QueryCache(0)
        limits = limits or LimitSettings()
        self._max_image_pixels = limits.max_image_pixels
        # One encoding thread: batches take turns on the cores instead of fighting for them.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode")
        # One search thread, beside it: batch n is searched while batch n+1 encodes.
        self._search_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="search")
        self._batched_search = batching.search == "batched"
        # Decoding a large upload takes memory and a core for a while: a few at a time,
        # so that a burst of photos cannot take all the memory or starve text queries.
        self._decoder = ThreadPoolExecutor(
            max_workers=limits.max_concurrent_decodes, thread_name_prefix="decode"
        )
        wait_s = batching.max_wait_ms / 1000.0
        self._texts: MicroBatcher[str, np.ndarray] = MicroBatcher(
            model.encode_texts,
            executor=self._executor,
            max_batch_size=batching.max_batch_size,
            max_wait_s=wait_s,
            on_batch=lambda n, s: metrics.observe_encode("text", n, s),
        )
        self._images: MicroBatcher[Any, np.ndarray] = MicroBatcher(
            model.encode_images,
            executor=self._executor,
            max_batch_size=batching.max_batch_size,
            max_wait_s=wait_s,
            on_batch=lambda n, s: metrics.observe_encode("image", n, s),
        )
        # Searches queue here as their batch's encoding ends; no waiting for company:
        # whatever queued while the search thread was busy is searched together.
        self._searches: MicroBatcher[SearchJob, list[SearchResult]] = MicroBatcher(
            self._search_batch,
            executor=self._search_pool,
            max_batch_size=4 * batching.max_batch_size,
            max_wait_s=0.0,
        )
        self._facets: tuple[SearchIndex, dict[str, list[str]]] | None = None

    def start(self) -> None:
        self._texts.start()
        self._images.start()
        self._searches.start()

    async def stop(self) -> None:
        await self._texts.stop()
        await self._images.stop()
        await self._searches.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._search_pool.shutdown(wait=False, cancel_futures=True)
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
            self._check_request(index, target, filters)
            query = normalise_query(query)
            vector = await self._text_vector(query)
            # A query that describes one product is ranked with the hubness correction,
            # where the index has measured it (models.hubness).
            corrected = (
                target in CORRECTED_TARGETS["text"]
                and target in index.hubness_targets
                and is_specific(query, self._min_words)
            )
            return await self._search(
                index, vector, started, k=k, target=target, filters=filters, corrected=corrected
            )

    async def _text_vector(self, query: str) -> np.ndarray:
        """The embedding of a normalised query: from the cache, else encoded and cached."""
        cache = self.query_cache
        if cache.size <= 0:
            return await self._texts.submit(query)
        model_id = self.model.model_id
        vector = cache.get(model_id, query)
        self.metrics.query_cache.labels("miss" if vector is None else "hit").inc()
        if vector is None:
            vector = await self._texts.submit(query)
            cache.put(model_id, query, vector)
        return vector

    def model_changed(self) -> None:
        """Forget the cached query embeddings of any model but the one serving now."""
        self.query_cache.keep_model(self.model.model_id)

    async def search_image(
        self, data: bytes, *, k: int, target: Target, filters: Mapping[str, Any] | None
    ) -> SearchResponse:
        """`data`: the uploaded file; raises models.errors.ImageDecodeError when it is not
        a complete image of an accepted format within the pixel budget."""
        started = time.perf_counter()
        with self.holder.lease() as index:
            self._check_request(index, target, filters)
            pixels = await self.decode(data)
            vector = await self._images.submit(pixels)
            # A photo describes one product: corrected wherever the index measured the
            # target's hubness against photos (titles; models.hubness).
            corrected = target in CORRECTED_TARGETS["image"] and target in index.hubness_targets
            return await self._search(
                index, vector, started, k=k, target=target, filters=filters, corrected=corrected
            )

    async def decode(self, data: bytes) -> Any:
        """An upload -> what the encoder takes, in the bounded pool of decoding threads:
        its preprocessed (3, H, W) pixels when the encoder can preprocess (so the photo is
        decoded once, here), else the upright RGB image."""
        decode = partial(self._decode, data)
        return await asyncio.get_running_loop().run_in_executor(self._decoder, decode)

    def _decode(self, data: bytes) -> Any:
        image = open_image(data, max_pixels=self._max_image_pixels)
        preprocess = getattr(self.model, "preprocess", None)  # models' encoders have it
        return image if preprocess is None else preprocess(image)

    async def _search(
        self,
        index: SearchIndex,
        vector: np.ndarray,
        started: float,
        *,
        k: int,
        target: Target,
        filters: Mapping[str, Any] | None,
        corrected: bool = False,
    ) -> SearchResponse:
        if self._batched_search:
            job = SearchJob(index, vector, k, target, filters, corrected)
            results = await self._searches.submit(job)
        else:
            results = await asyncio.to_thread(
                self._search_sync, index, vector, k, target, filters, corrected
            )
        took_ms = (time.perf_counter() - started) * 1000.0
        return SearchResponse(results=results, took_ms=round(took_ms, 3), model=self.model_id)

    def _search_batch(self, jobs: Sequence[SearchJob]) -> list[list[SearchResult]]:
        """Search the queued jobs together (one index search per target and filter set)."""
        hits = search_jobs(jobs, self.metrics.observe_search)
        return [self._results(job.index, row) for job, row in zip(jobs, hits, strict=True)]

    def _search_sync(
        self,
        index: SearchIndex,
        vector: np.ndarray,
        k: int,
        target: Target,
        filters: Mapping[str, Any] | None,
        corrected: bool = False,
    ) -> list[SearchResult]:
        started = time.perf_counter()
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        hits = index.search(query, k, filters, target=target, corrected=corrected)[0]
        self.metrics.observe_search(target, 1, time.perf_counter() - started)
        return self._results(index, hits)

    async def similar(
        self, product_id: str, *, k: int, target: Target, filters: Mapping[str, Any] | None
    ) -> SearchResponse:
        """The k products nearest to product_id's own vector of target, without the
        product and its exact duplicates; ProductNotFoundError for an unknown id."""
        started = time.perf_counter()
        with self.holder.lease() as index:
            self._check_request(index, target, filters)
            results = await asyncio.to_thread(
                self._similar_sync, index, product_id, k, target, filters
            )
        took_ms = (time.perf_counter() - started) * 1000.0
        return SearchResponse(results=results, took_ms=round(took_ms, 3), model=self.model_id)

    def _similar_sync(
        self,
        index: SearchIndex,
        product_id: str,
        k: int,
        target: Target,
        filters: Mapping[str, Any] | None,
    ) -> list[SearchResult]:
        if index.get_products([product_id])[0] is None:
            raise ProductNotFoundError(f"no product with id {product_id!r}")
        started = time.perf_counter()
        hits = index.similar(product_id, k, filters, target=target)
        self.metrics.observe_search(target, 1, time.perf_counter() - started)
        return self._results(index, hits)

    @staticmethod
    def _results(index: SearchIndex, hits: list[Hit]) -> list[SearchResult]:
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

    def _check_request(
        self, index: SearchIndex, target: Target, filters: Mapping[str, Any] | None
    ) -> None:
        """Refuse, before any encoding, a target the index lacks and unknown filters."""
        if target not in index.targets:
            raise TargetUnavailableError(
                f"the index being served has no {target!r} vectors (it was built before "
                "product vectors existed); rebuild it with `fashion-retrieval index build` "
                f"and reload, or search target {' or '.join(repr(t) for t in index.targets)}"
            )
        if filters:
            check_filters(filters, self.facets(index))  # the indexer's rule, before encoding
