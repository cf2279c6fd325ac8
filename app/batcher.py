"""Micro-batching: concurrent queries are encoded (and searched) together, off the
event loop.

A request hands its item to `MicroBatcher.submit` and awaits its result. A single
background task collects items for at most `max_wait_s` (or until `max_batch_size`
are waiting), runs the batch function on the whole batch in a worker thread, and hands
each request its result (an encoder's row, or a search's hits). While one batch is being
processed the next one fills up, so batches grow with load and throughput with them.
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
R = TypeVar("R")
# (N items) -> N results; an encoder's (N, D) array counts as its N rows.
BatchFn = Callable[[Sequence[T]], Sequence[R] | np.ndarray]
BatchObserver = Callable[[int, float], None]


@dataclass
class _Pending(Generic[T, R]):
    item: T
    future: asyncio.Future[R]


class BatcherClosedError(RuntimeError):
    """The batcher was stopped while a request waited for it."""


class MicroBatcher(Generic[T, R]):
    """Gathers single items into batches for `process` ((N items) -> N results, such as
    an encoder's (N, D) array, whose float32 rows are the results)."""

    def __init__(
        self,
        process: BatchFn[T, R],
        *,
        executor: Executor,
        max_batch_size: int = 32,
        max_wait_s: float = 0.002,
        on_batch: BatchObserver | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """`clock` (seconds) times the wait for a batch to fill; tests pass a fake one."""
        self._process = process
        self._clock = clock
        self._executor = executor
        self._max_batch_size = max_batch_size
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Pending[T, R]] | None = None
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

    async def submit(self, item: T) -> R:
        """Process one item with whatever else is waiting; returns its result."""
        if self._queue is None:
            self.start()
        assert self._queue is not None
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(item, future))
        return await future

    async def _collect(self) -> list[_Pending[T, R]]:
        assert self._queue is not None
        batch = [await self._queue.get()]
        deadline = self._clock() + self._max_wait_s
        while len(batch) < self._max_batch_size:
            # Take whatever already queued up without waiting, then wait out the deadline.
            while len(batch) < self._max_batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            remaining = deadline - self._clock()
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
                    self._executor, self._process_batch, [p.item for p in batch]
                )
                if len(rows) != len(batch):
                    raise RuntimeError(f"got {len(rows)} results for {len(batch)} items")
            except asyncio.CancelledError:
                self._fail(batch, BatcherClosedError("the service is shutting down"))
                raise
            except Exception as exc:
                logger.exception("processing a batch of %d failed", len(batch))
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
    def _fail(batch: list[_Pending[T, R]], exc: BaseException) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(exc)

    def _run_process(self, items: list[T]) -> list[R]:
        out = self._process(items)
        if isinstance(out, np.ndarray):  # an encoder's rows, as float32
            return list(out.astype(np.float32, copy=False))
        return list(out)

    def _process_batch(self, items: list[T]) -> list[R | BaseException]:
        """Process the batch in the worker thread; if that fails, item by item so that
        one bad item fails only its own request."""
        try:
            return list(self._run_process(items))
        except Exception as exc:  # noqa: BLE001 - handed to the request that owns it
            if len(items) == 1:
                return [exc]
            logger.warning("a batch of %d failed; retrying one by one", len(items))
        results: list[R | BaseException] = []
        for item in items:
            try:
                results.append(self._run_process([item])[0])
            except Exception as exc:  # noqa: BLE001
                results.append(exc)
        return results
