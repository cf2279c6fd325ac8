"""Batched search: a micro-batch is searched together and answers exactly what one
search per query answers, with and without filters, on every target."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from app_fakes import FakeEncoder, FakeIndex, make_settings, running
from fastapi import FastAPI

from app.batch_search import SearchJob, filters_key, search_jobs
from app.main import create_app
from indexer import open_index
from models import read_catalog

QUERIES = ["navy blue shirt", "red dress", "black shoes", "white watch", "blue jeans"]


class CountingIndex(FakeIndex):
    """A FakeIndex that records each search call's number of queries."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.calls: list[int] = []

    def search(self, vectors, k, filters=None, *, target, corrected=False):  # type: ignore[no-untyped-def]
        self.calls.append(len(vectors))
        return super().search(vectors, k, filters, target=target, corrected=corrected)


def test_filters_key_ignores_value_order() -> None:
    assert filters_key({"a": ["x", "y"], "b": "z"}) == filters_key({"b": "z", "a": ["y", "x"]})
    assert filters_key(None) == filters_key({}) != filters_key({"a": "x"})


def test_jobs_are_grouped_by_target_and_filters(products, encoder: FakeEncoder) -> None:  # type: ignore[no-untyped-def]
    index = CountingIndex(products, encoder)
    vectors = encoder.encode_texts(QUERIES * 2)
    gender = products[0].attributes["gender"]
    plans = [
        ("image", None, 5),
        ("image", {}, 9),
        ("image", {"gender": gender}, 3),
        ("text", None, 4),
        ("product", {"gender": [gender]}, 7),
    ] * 2
    jobs = [
        SearchJob(index, vector, k, target, filters)  # type: ignore[arg-type]
        for vector, (target, filters, k) in zip(vectors, plans, strict=True)
    ]
    observed: list[tuple[str, int]] = []
    batched = search_jobs(jobs, lambda target, n, s: observed.append((target, n)))
    assert sorted(index.calls) == [2, 2, 2, 4]  # one search per target and filter set
    assert sorted(observed) == [("image", 2), ("image", 4), ("product", 2), ("text", 2)]
    for job, hits in zip(jobs, batched, strict=True):
        alone = index.search(job.vector[None], job.k, job.filters, target=job.target)[0]
        assert [h.id for h in hits] == [h.id for h in alone]
        np.testing.assert_allclose([h.score for h in hits], [h.score for h in alone], atol=1e-6)


def test_corrected_and_plain_queries_are_searched_apart(products, encoder: FakeEncoder) -> None:  # type: ignore[no-untyped-def]
    index = CountingIndex(products, encoder)
    vectors = encoder.encode_texts(QUERIES)
    flags = [True, False, True, False, True]
    jobs = [
        SearchJob(index, vector, 5, "image", None, flag)  # type: ignore[arg-type]
        for vector, flag in zip(vectors, flags, strict=True)
    ]
    search_jobs(jobs)
    assert sorted(index.calls) == [2, 3]
    assert sorted(index.corrected) == sorted(flags)


async def _answers(app: FastAPI, requests: list[dict]) -> list[list[tuple[str, float]]]:
    async with running(app) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/search/text", json=body) for body in requests)
        )
    assert [r.status_code for r in responses] == [200] * len(requests)
    return [[(r["id"], r["score"]) for r in resp.json()["results"]] for resp in responses]


@pytest.mark.anyio
@pytest.mark.parametrize("scan", ["float32", "float16", "pca"])
async def test_the_service_answers_as_one_search_per_query(
    tmp_path: Path, tiny_model, real_index_dir: Path, sample_catalog: Path, scan: str
) -> None:  # type: ignore[no-untyped-def]
    """Concurrent requests over the real indexer (an exact index), batched and not."""
    catalog = read_catalog(sample_catalog).products
    product = catalog[0]
    gender, article = product.attributes["gender"], product.attributes["articleType"]
    requests = [
        {"query": query, "k": k, "target": target, "filters": filters}
        for query in QUERIES
        for target, k, filters in (
            ("image", 10, {}),
            ("product", 5, {"gender": gender}),
            ("text", 8, {"gender": gender, "articleType": [article, "Shirts"]}),
            ("image", 30, {"articleType": article}),
        )
    ]
    answers = {}
    for mode in ("batched", "per-query"):
        settings = make_settings(tmp_path, batching={"search": mode, "max_wait_ms": 20})
        with open_index(real_index_dir, device="cpu", scan=scan) as index:
            app = create_app(settings, model=tiny_model, index=index)
            answers[mode] = await _answers(app, requests)
            if mode == "batched":
                sizes = app.state.metrics.search_batch_size
                count = sum(sizes.labels(t)._sum.get() for t in ("image", "product", "text"))
                assert count == len(requests)
    for batched, single, body in zip(answers["batched"], answers["per-query"], requests):
        assert [i for i, _ in batched] == [i for i, _ in single], body
        np.testing.assert_allclose([s for _, s in batched], [s for _, s in single], atol=1e-5)
        matching = sum(
            all(
                p.attributes.get(name) in ([want] if isinstance(want, str) else want)
                for name, want in body["filters"].items()
            )
            for p in catalog
        )
        assert len(batched) == min(body["k"], matching)  # never fewer than k while k match


@pytest.mark.anyio
async def test_concurrent_queries_share_one_search(
    make_app: Callable[..., FastAPI], encoder: FakeEncoder, index: FakeIndex
) -> None:
    calls: list[int] = []
    search = index.search

    def counting(vectors, k, filters=None, *, target, corrected=False):  # type: ignore[no-untyped-def]
        calls.append(len(vectors))
        return search(vectors, k, filters, target=target, corrected=corrected)

    index.search = counting  # type: ignore[method-assign]
    encoder.delay_s = 0.05  # the queries gather into one encoding batch
    app = make_app(batching={"max_batch_size": 16, "max_wait_ms": 20})
    await _answers(app, [{"query": f"shirt {i}"} for i in range(12)])
    assert sum(calls) == 12 and max(calls) > 1
