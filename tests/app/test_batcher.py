"""MicroBatcher: concurrent items share batches, the event loop never blocks."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from app.batcher import BatcherClosedError, MicroBatcher


class SlowEncoder:
    def __init__(self, delay_s: float = 0.02) -> None:
        self.delay_s = delay_s
        self.batches: list[int] = []

    def __call__(self, items: Sequence[float]) -> np.ndarray:
        self.batches.append(len(items))
        if any(item < 0 for item in items):
            raise ValueError("negative item")
        time.sleep(self.delay_s)  # blocks its worker thread, like a model does
        return np.array([[item, 2 * item] for item in items], dtype=np.float32)


@pytest.fixture
def executor():  # type: ignore[no-untyped-def]
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


@pytest.mark.anyio
async def test_concurrent_items_are_encoded_together(executor: ThreadPoolExecutor) -> None:
    encode = SlowEncoder()
    batcher = MicroBatcher(encode, executor=executor, max_batch_size=8, max_wait_s=0.005)
    batcher.start()
    rows = await asyncio.gather(*(batcher.submit(float(i)) for i in range(40)))
    await batcher.stop()
    assert [row.tolist() for row in rows] == [[float(i), 2.0 * i] for i in range(40)]
    assert sum(encode.batches) == 40
    assert max(encode.batches) == 8  # never more than max_batch_size
    assert len(encode.batches) <= 6


class SteppingClock:
    """The batcher's clock: moves `step` seconds every time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        value = self.now
        self.now += self.step
        return value


# Guards against a hang only: every test below finishes in milliseconds when it passes.
HANG_GUARD_S = 30.0


@pytest.mark.anyio
async def test_a_lone_item_waits_at_most_max_wait(executor: ThreadPoolExecutor) -> None:
    """max_wait is an hour, and an hour passes on the batcher's clock between its reads:
    the lone item goes out as a batch of one at the deadline, not an hour later."""
    encode = SlowEncoder(delay_s=0.0)
    batcher = MicroBatcher(
        encode, executor=executor, max_batch_size=32, max_wait_s=3600.0, clock=SteppingClock(3600.0)
    )
    row = await asyncio.wait_for(batcher.submit(3.0), HANG_GUARD_S)
    assert row.tolist() == [3.0, 6.0]
    assert encode.batches == [1]
    await batcher.stop()


@pytest.mark.anyio
async def test_an_item_waits_for_company_until_max_wait(executor: ThreadPoolExecutor) -> None:
    """With the batcher's clock standing still, the deadline never comes: the first item
    waits, and the second joins its batch."""
    encode = SlowEncoder(delay_s=0.0)
    batcher = MicroBatcher(
        encode, executor=executor, max_batch_size=2, max_wait_s=1.0, clock=SteppingClock(0.0)
    )
    first = asyncio.create_task(batcher.submit(1.0))
    for _ in range(10):  # let the collector take the first item and start waiting
        await asyncio.sleep(0)
    assert not first.done() and encode.batches == []
    second = await asyncio.wait_for(batcher.submit(2.0), HANG_GUARD_S)
    assert (await first).tolist() == [1.0, 2.0] and second.tolist() == [2.0, 4.0]
    assert encode.batches == [2]
    await batcher.stop()


@pytest.mark.anyio
async def test_event_loop_keeps_running_while_encoding(executor: ThreadPoolExecutor) -> None:
    """The encoder holds its thread until the event loop has ticked three times: that can
    only happen if the encode runs off the loop (on the loop it would wait out the guard)."""
    release = threading.Event()
    released_by_loop: list[bool] = []

    def blocking_encode(items: Sequence[float]) -> np.ndarray:
        released_by_loop.append(release.wait(HANG_GUARD_S))
        return np.array([[item, 2 * item] for item in items], dtype=np.float32)

    batcher = MicroBatcher(blocking_encode, executor=executor, max_wait_s=0.001)

    async def ticker() -> None:
        for _ in range(3):
            await asyncio.sleep(0.001)
        release.set()

    task = asyncio.create_task(ticker())
    row = await batcher.submit(1.0)
    await task
    await batcher.stop()
    assert row.tolist() == [1.0, 2.0]
    assert released_by_loop == [True]


@pytest.mark.anyio
async def test_one_bad_item_fails_only_its_request(executor: ThreadPoolExecutor) -> None:
    encode = SlowEncoder(delay_s=0.0)
    batcher = MicroBatcher(encode, executor=executor, max_batch_size=8, max_wait_s=0.01)
    results = await asyncio.gather(
        batcher.submit(1.0), batcher.submit(-1.0), batcher.submit(2.0), return_exceptions=True
    )
    await batcher.stop()
    assert results[0].tolist() == [1.0, 2.0]
    assert isinstance(results[1], ValueError)
    assert results[2].tolist() == [2.0, 4.0]
    # and the batcher keeps working
    assert encode.batches[0] == 3


@pytest.mark.anyio
async def test_stop_fails_waiting_requests(executor: ThreadPoolExecutor) -> None:
    encode = SlowEncoder(delay_s=0.2)
    batcher = MicroBatcher(encode, executor=executor, max_batch_size=1, max_wait_s=0.0)
    waiting = [asyncio.create_task(batcher.submit(float(i))) for i in range(3)]
    await asyncio.sleep(0.05)
    await batcher.stop()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, BatcherClosedError) for r in results)
