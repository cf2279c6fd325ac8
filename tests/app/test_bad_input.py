"""Every bad input gets a 4xx with a `{"detail": "..."}` saying what is wrong."""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable

import pytest
from app_fakes import image_bytes
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image


def _detail(response, status: int) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str), body
    assert "Traceback" not in body["detail"]
    return body["detail"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"query": ""}, 422, ["query", "at least 1"]),
        ({"query": "   \t "}, 422, ["query", "at least 1"]),
        ({"query": "x" * 513}, 422, ["query", "at most 512"]),
        ({}, 422, ["query", "required"]),
        ({"query": 42}, 422, ["query", "string"]),
        ({"query": "shirt", "k": 0}, 422, ["k", "greater than or equal to 1"]),
        ({"query": "shirt", "k": 101}, 422, ["k", "less than or equal to 100"]),
        ({"query": "shirt", "k": "ten"}, 422, ["k", "integer"]),
        ({"query": "shirt", "target": "video"}, 422, ["target", "'image', 'text' or 'product'"]),
        ({"query": "shirt", "filters": {"colour": "Red"}}, 422, ["unknown filter", "colour"]),
        ({"query": "shirt", "filters": {"gender": 3}}, 422, ["filters.gender"]),
        ({"query": "shirt", "filters": {"gender": []}}, 422, ["filters.gender"]),
        ({"query": "shirt", "filters": ["gender"]}, 422, ["filters", "dictionary"]),
        ({"query": "shirt", "topk": 5}, 422, ["topk", "not permitted"]),
    ],
)
def test_bad_text_queries(client: TestClient, body: dict, status: int, words: list[str]) -> None:
    detail = _detail(client.post("/v1/search/text", json=body), status)
    for word in words:
        assert word in detail


def test_query_of_512_chars_is_fine(client: TestClient) -> None:
    assert client.post("/v1/search/text", json={"query": " " + "x" * 512 + " "}).status_code == 200


def test_malformed_json(client: TestClient) -> None:
    response = client.post(
        "/v1/search/text",
        content=b'{"query": "shirt",',
        headers={"Content-Type": "application/json"},
    )
    assert "not valid JSON" in _detail(response, 400)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_text_search_wants_json(client: TestClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/v1/search/text", content=b"query=shirt", headers=headers)
    assert "application/json" in _detail(response, 415)


def test_image_search_wants_multipart(client: TestClient) -> None:
    response = client.post("/v1/search/image", json={"file": "abc"})
    assert "multipart/form-data" in _detail(response, 415)


def _upload(client: TestClient, data: bytes, content_type: str = "image/jpeg", **form: str):  # type: ignore[no-untyped-def]
    return client.post("/v1/search/image", files={"file": ("q", data, content_type)}, data=form)


def _bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (over Pillow's limit)."""
    png = io.BytesIO()
    Image.new("L", (1, 1)).save(png, format="PNG")
    data = bytearray(png.getvalue())
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "content_type", "form", "status", "words"),
    [
        (b"this is not an image", "image/jpeg", {}, 422, ["not a readable image"]),
        (image_bytes("JPEG", (200, 200))[:300], "image/jpeg", {}, 422, ["not a readable image"]),
        (_bomb_png(), "image/png", {}, 422, ["too large"]),
        (b"", "image/jpeg", {}, 422, ["empty"]),
        (image_bytes(), "text/plain", {}, 415, ["text/plain", "image"]),
        (image_bytes(), "image/jpeg", {"k": "0"}, 422, ["k"]),
        (image_bytes(), "image/jpeg", {"k": "many"}, 422, ["k"]),
        (image_bytes(), "image/jpeg", {"target": "both"}, 422, ["target"]),
        (image_bytes(), "image/jpeg", {"filters": "{gender: Men"}, 422, ["filters", "JSON"]),
        (image_bytes(), "image/jpeg", {"filters": '["Men"]'}, 422, ["filters"]),
        (
            image_bytes(),
            "image/jpeg",
            {"filters": '{"size": "M"}'},
            422,
            ["unknown filter", "size"],
        ),
    ],
)
def test_bad_uploads(
    client: TestClient, data: bytes, content_type: str, form: dict, status: int, words: list[str]
) -> None:
    detail = _detail(_upload(client, data, content_type, **form), status)
    for word in words:
        assert word in detail


def test_upload_without_file_field(client: TestClient) -> None:
    response = client.post(
        "/v1/search/image", files={"photo": ("q.jpg", image_bytes(), "image/jpeg")}
    )
    assert "file" in _detail(response, 422)


def test_upload_over_the_configured_limit(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(limits={"max_upload_bytes": 2048})
    with TestClient(app) as client:
        assert _upload(client, image_bytes("JPEG", (20, 20))).status_code == 200
        big = image_bytes("PNG", (400, 400)) + b"\0" * 70_000
        stopped_by_middleware = _detail(_upload(client, big, "image/png"), 413)
        # Over the image limit but within the body's room for the form: the route's check.
        just_over = image_bytes("PNG", (20, 20)) + b"\0" * 4096
        stopped_by_route = _detail(_upload(client, just_over, "image/png"), 413)
    assert (
        stopped_by_middleware
        == stopped_by_route
        == ("the upload is too large: images up to 2 KB are accepted")
    )


def test_oversized_json_body(client: TestClient) -> None:
    body = json.dumps({"query": "shirt", "filters": {"gender": ["x" * 100] * 100}}).encode() * 10
    response = client.post(
        "/v1/search/text", content=body, headers={"Content-Type": "application/json"}
    )
    assert "too large" in _detail(response, 413)


def test_unknown_routes_and_methods_answer_json(client: TestClient) -> None:
    assert _detail(client.get("/v1/nothing"), 404)
    assert _detail(client.get("/v1/search/text"), 405)
