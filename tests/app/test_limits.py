"""Oversized bodies are refused without being read into memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from app_fakes import running
from fastapi import FastAPI

MB = 1024 * 1024
CHUNK = 64 * 1024


class Body:
    """An async request body of `total` bytes that counts how much was pulled."""

    def __init__(self, total: int, head: bytes = b"") -> None:
        self.total = total
        self.head = head
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.head:
            self.sent += len(self.head)
            yield self.head
        while self.sent < self.total:
            self.sent += CHUNK
            yield b"\0" * CHUNK


MULTIPART_HEAD = (
    b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
    b"Content-Type: image/jpeg\r\n\r\n"
)


@pytest.mark.anyio
async def test_declared_200_mb_upload_is_refused_unread(make_app: Callable[..., FastAPI]) -> None:
    body = Body(200 * MB, MULTIPART_HEAD)
    async with running(make_app()) as client:
        response = await client.post(
            "/v1/search/image",
            content=body,
            headers={
                "Content-Type": "multipart/form-data; boundary=XyZ",
                "Content-Length": str(200 * MB),
            },
        )
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]
    assert "10.0 MB" in response.json()["detail"]
    assert body.sent <= CHUNK + len(MULTIPART_HEAD)  # at most what the transport pre-reads


@pytest.mark.anyio
async def test_streamed_200_mb_upload_is_cut_off_at_the_limit(
    make_app: Callable[..., FastAPI],
) -> None:
    body = Body(200 * MB, MULTIPART_HEAD)  # no Content-Length: chunked
    async with running(make_app()) as client:
        response = await client.post(
            "/v1/search/image",
            content=body,
            headers={"Content-Type": "multipart/form-data; boundary=XyZ"},
        )
        assert response.status_code == 413, response.text
        assert "too large" in response.json()["detail"]
        # Read up to twice the limit (lingering close, so the client can read the 413),
        # never the 200 MB.
        assert 10 * MB < body.sent <= 2 * (10 * MB + 64 * 1024) + CHUNK
        # The service is fine afterwards.
        ok = await client.post("/v1/search/text", json={"query": "red dress"})
        assert ok.status_code == 200


@pytest.mark.anyio
async def test_bad_content_length(make_app: Callable[..., FastAPI]) -> None:
    async with running(make_app()) as client:
        response = await client.post(
            "/v1/search/text",
            content=b'{"query": "x"}',
            headers={"Content-Type": "application/json", "Content-Length": "lots"},
        )
    assert response.status_code == 400
    assert "Content-Length" in response.json()["detail"]
