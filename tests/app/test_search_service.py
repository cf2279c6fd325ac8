"""The search service inside the app: micro-batching and a free event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from app_fakes import FakeEncoder, image_bytes, running
from fastapi import FastAPI

# Guards against a hang only: the tests finish in milliseconds when they pass.
HANG_GUARD_S = 30.0


@pytest.mark.anyio
async def test_concurrent_queries_are_encoded_in_batches(
    make_app: Callable[..., FastAPI], encoder: FakeEncoder
) -> None:
    encoder.delay_s = 0.03
    encoder.batches.clear()
    async with running(make_app(batching={"max_batch_size": 16, "max_wait_ms": 5})) as client:
        texts = [client.post("/v1/search/text", json={"query": f"shirt {i}"}) for i in range(24)]
        photos = [
            client.post("/v1/search/image", files={"file": ("q.png", image_bytes("PNG"))})
            for _ in range(6)
        ]
        responses = await asyncio.gather(*texts, *photos)
    assert [r.status_code for r in responses] == [200] * 30
    text_batches = [n for kind, n in encoder.batches if kind == "text"]
    image_batches = [n for kind, n in encoder.batches if kind == "image"]
    assert sum(text_batches) == 24 and len(text_batches) <= 6
    assert max(text_batches) <= 16
    assert sum(image_batches) == 6 and len(image_batches) < 6


@pytest.mark.anyio
async def test_slow_encoding_does_not_block_other_requests(
    make_app: Callable[..., FastAPI], encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The text encoder holds its thread until /healthz has answered: that can only happen
    if the encode runs off the event loop (on it, the health check would wait for the
    encode, which waits out the guard and reports it was not released)."""
    entered, release = threading.Event(), threading.Event()
    released_by_health: list[bool] = []
    encode_texts = encoder.encode_texts

    def blocking_encode(texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        entered.set()
        released_by_health.append(release.wait(HANG_GUARD_S))
        return encode_texts(texts, batch_size)

    monkeypatch.setattr(encoder, "encode_texts", blocking_encode)
    async with running(make_app()) as client:
        search = asyncio.create_task(client.post("/v1/search/text", json={"query": "shirt"}))
        assert await asyncio.to_thread(entered.wait, HANG_GUARD_S)  # the encode is under way
        health = await client.get("/healthz")
        search_was_waiting = not search.done()
        release.set()
        assert health.status_code == 200
        assert search_was_waiting
        assert (await search).status_code == 200
    assert released_by_health == [True]
