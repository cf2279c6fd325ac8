"""The search service inside the app: micro-batching and a free event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from app_fakes import FakeEncoder, image_bytes, running
from fastapi import FastAPI


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
    make_app: Callable[..., FastAPI], encoder: FakeEncoder
) -> None:
    encoder.delay_s = 0.4
    async with running(make_app()) as client:
        search = asyncio.create_task(client.post("/v1/search/text", json={"query": "shirt"}))
        await asyncio.sleep(0.05)  # the encode is under way
        started = time.perf_counter()
        health = await client.get("/healthz")
        assert time.perf_counter() - started < 0.2
        assert health.status_code == 200
        assert not search.done()
        assert (await search).status_code == 200
