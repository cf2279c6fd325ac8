"""Micro-batching: concurrent queries are encoded together, off the event loop.

A request hands its item to `MicroBatcher.submit` and awaits its row. A single
background task collects items for at most `max_wait_s` (or until `max_batch_size`
are waiting), runs the encoder on the whole batch in a worker thread, and hands each
request its row. While one batch is being encoded the next one fills up, so batches
grow with load and throughput with them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

logger = logging.getLogger(__name__)

T = TypeVar("T")
EncodeFn = Callable[[Sequence[T]], np.ndarray]
BatchObserver = Callable[[int, float], None]


@dataclass
class _Pending(Generic[T]):
    item: T
    future: asyncio.Future[np.ndarray]


class BatcherClosedError(RuntimeError):
    """The batcher was stopped while a request waited for it."""


class MicroBatcher(Generic[T]):
    """Gathers single items into batches for `encode` ((N items) -> (N, D) array)."""

    def __init__(
        self,
        encode: EncodeFn[T],
        *,
        executor: Executor,
        max_batch_size: int = 32,
        max_wait_s: float = 0.002,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self._encode = encode
        self._executor = executor
        self._max_batch_size = max_batch_size
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Pending[T]] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the collecting task on the running event loop."""
        if self._task is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop collecting; requests still waiting get BatcherClosedError."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while self._queue is not None and not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(BatcherClosedError("the service is shutting down"))

    async def submit(self, item: T) -> np.ndarray:
        """Encode one item with whatever else is waiting; returns its (D,) row."""
        if self._queue is None:
            self.start()
        assert self._queue is not None
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(item, future))
        return await future

    async def _collect(self) -> list[_Pending[T]]:
        assert self._queue is not None
        batch = [await self._queue.get()]
        deadline = time.perf_counter() + self._max_wait_s
        while len(batch) < self._max_batch_size:
            # Take whatever already queued up without waiting, then wait out the deadline.
            while len(batch) < self._max_batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            remaining = deadline - time.perf_counter()
            if len(batch) >= self._max_batch_size or remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [p for p in await self._collect() if not p.future.done()]
            if not batch:
                continue
            started = time.perf_counter()
            try:
                rows = await loop.run_in_executor(
                    self._executor, self._encode_batch, [p.item for p in batch]
                )
                if len(rows) != len(batch):
                    raise RuntimeError(f"encoder returned {len(rows)} rows for {len(batch)} items")
            except asyncio.CancelledError:
                self._fail(batch, BatcherClosedError("the service is shutting down"))
                raise
            except Exception as exc:
                logger.exception("encoding a batch of %d failed", len(batch))
                self._fail(batch, exc)
                continue
            if self._on_batch is not None:
                self._on_batch(len(batch), time.perf_counter() - started)
            for pending, row in zip(batch, rows, strict=True):
                if pending.future.done():  # the request was cancelled meanwhile
                    continue
                if isinstance(row, BaseException):
                    pending.future.set_exception(row)
                else:
                    pending.future.set_result(row)

    @staticmethod
    def _fail(batch: list[_Pending[T]], exc: BaseException) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(exc)

    def _encode_batch(self, items: list[T]) -> list[np.ndarray | BaseException]:
        """Encode the batch in the worker thread; if that fails, encode item by item so
        that one bad item fails only its own request."""
        try:
            return list(np.asarray(self._encode(items), dtype=np.float32))
        except Exception as exc:  # noqa: BLE001 - handed to the request that owns it
            if len(items) == 1:
                return [exc]
            logger.warning("a batch of %d failed to encode; retrying one by one", len(items))
        results: list[np.ndarray | BaseException] = []
        for item in items:
            try:
                results.append(np.asarray(self._encode([item]), dtype=np.float32)[0])
            except Exception as exc:  # noqa: BLE001
                results.append(exc)
        return results
