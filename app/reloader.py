"""Admin reload: open the newest published index and swap it in while queries run."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from app.errors import ReloadError
from app.holder import IndexHolder
from app.metrics import Metrics
from app.protocols import SearchIndex
from app.schemas import ReloadResponse

logger = logging.getLogger(__name__)


class Reloader:
    """`open_latest()` opens the newest published index (checking it fits the model)."""

    def __init__(
        self,
        holder: IndexHolder,
        open_latest: Callable[[], SearchIndex],
        metrics: Metrics,
        *,
        model_id: str,
        on_swap: Callable[[], None] | None = None,
    ) -> None:
        """`on_swap` runs after each swap (the service drops cached query embeddings of
        a model no longer serving)."""
        self._holder = holder
        self._open_latest = open_latest
        self._metrics = metrics
        self._model_id = model_id
        self._on_swap = on_swap
        self._lock = asyncio.Lock()

    async def reload(self) -> ReloadResponse:
        """Swap in the newest index; in-flight requests finish on the one they started
        with. On failure the current index keeps serving and ReloadError says why."""
        async with self._lock:  # one reload at a time
            started = time.perf_counter()
            try:
                index = await asyncio.to_thread(self._open_latest)
            except Exception as exc:
                logger.warning("index reload failed: %s", exc)
                self._metrics.reloads.labels("failed").inc()
                raise ReloadError(
                    f"reload failed, still serving the previous index: {exc}"
                ) from exc
            previous_products = len(self._holder.current)
            self._holder.swap(index)  # the old index closes when its last request ends
            if self._on_swap is not None:
                self._on_swap()
            self._metrics.reloads.labels("ok").inc()
            self._metrics.set_serving(model_id=self._model_id, index_size=len(index))
            took_ms = (time.perf_counter() - started) * 1000.0
            logger.info("reloaded the index: %d products (was %d)", len(index), previous_products)
            return ReloadResponse(
                status="reloaded",
                model=self._model_id,
                products=len(index),
                previous_products=previous_products,
                took_ms=round(took_ms, 3),
            )
