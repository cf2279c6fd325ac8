"""The Milvus side of benchmarks/bench_index.py (--backend milvus or both).

Writes the vectors into a Milvus collection with the schema `index build --backend
milvus` uses (each vector in the image, text and product fields; an attribute `bucket`
with ten values to filter on, in the JSON field and in its indexed column `attr_bucket`),
indexes it as the indexer chooses for its size (indexer.milvus.schema.choose_milvus_index),
publishes it under an alias and searches it through indexer.milvus's MilvusIndex, as the
service does: one query at a time. Beside it, FAISS `Flat` through indexer.knn.search
(the FAISS backend's search, one thread) with and without the same filter.
"""

from __future__ import annotations

import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer import knn
from indexer.faiss_index import IndexSpec, create_index
from indexer.milvus.build import INSERT_ROWS, new_manifest
from indexer.milvus.connection import MilvusLocation, connect
from indexer.milvus.schema import (
    ATTRIBUTES_FIELD,
    ID_FIELD,
    PHOTO_FIELD,
    PHOTO_SHA_FIELD,
    TITLE_FIELD,
    VECTOR_FIELDS,
    attribute_columns,
    choose_milvus_index,
    create_schema,
    index_params,
    manifest_property,
)
from indexer.milvus.search import open_milvus_index
from indexer.milvus.versions import next_version, prune_versions, switch_alias

BUCKETS = 10
LATENCY_QUERIES = 300


@dataclass
class MilvusRow:
    backend: str
    index_type: str
    filtered: bool
    build_s: float
    vectors_per_s: float
    recall: float
    p50_ms: float
    p99_ms: float
    rss_mb: float


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build(data: np.ndarray, location: MilvusLocation) -> tuple[float, str]:
    """Write, index and publish `data`; returns (seconds, index type)."""
    spec = choose_milvus_index(len(data))
    columns = attribute_columns(["bucket"])
    client = connect(location)
    started = time.perf_counter()
    try:
        name = next_version(client, location)
        client.create_collection(name, schema=create_schema(data.shape[1], columns))
        for start in range(0, len(data), INSERT_ROWS):
            rows = []
            for i in range(start, min(start + INSERT_ROWS, len(data))):
                row = {ID_FIELD: str(i), TITLE_FIELD: "", PHOTO_FIELD: "", PHOTO_SHA_FIELD: ""}
                row[ATTRIBUTES_FIELD] = {"bucket": str(i % BUCKETS)}
                row[columns["bucket"]] = str(i % BUCKETS)
                row.update(dict.fromkeys(VECTOR_FIELDS.values(), data[i]))
                rows.append(row)
            client.insert(name, rows)
        client.flush(name)
        client.create_index(name, index_params(client, spec, columns))
        client.load_collection(name)
        manifest = new_manifest(
            model_id="bench",
            dim=data.shape[1],
            count=len(data),
            spec=spec,
            collection=name,
            weights=(0.9, 0.1),
            images_root=Path("."),
            facets={"bucket": [str(b) for b in range(BUCKETS)]},
            columns=columns,
        )
        client.alter_collection_properties(name, properties=manifest_property(manifest))
        switch_alias(client, location, name)
        prune_versions(client, location, keep=1)
    finally:
        client.close()
    return time.perf_counter() - started, spec.index_type


def _allowed(n: int, filtered: bool) -> np.ndarray | None:
    """The ids in bucket 3 (sorted), or None without a filter."""
    return np.flatnonzero(np.arange(n) % BUCKETS == 3) if filtered else None


def _truth(data: np.ndarray, queries: np.ndarray, k: int, allowed: np.ndarray | None):
    pool = data if allowed is None else data[allowed]
    truth = np.argsort(-(queries @ pool.T), axis=1)[:, :k]
    return truth if allowed is None else allowed[truth]


def _row(
    backend: str,
    index_type: str,
    filtered: bool,
    build_s: float,
    n: int,
    found: list[list[int]],
    truth: np.ndarray,
    times: list[float],
    rss: float,
) -> MilvusRow:
    k = truth.shape[1]
    recall = float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth, strict=False)]))
    times = sorted(times)
    return MilvusRow(
        backend,
        index_type,
        filtered,
        build_s,
        n / build_s,
        recall,
        statistics.median(times),
        times[int(0.99 * (len(times) - 1))],
        rss,
    )


def measure_milvus(
    data: np.ndarray, queries: np.ndarray, k: int, uri: str, collection: str = "bench"
) -> list[MilvusRow]:
    """Build throughput, then recall@k against exact search and one-query latency, with
    and without a filter on one bucket of ten."""
    location = MilvusLocation(uri, collection, timeout_s=600.0)
    rss_before = _rss_mb()
    build_s, index_type = build(data, location)
    rss = _rss_mb() - rss_before
    rows = []
    with open_milvus_index(location) as index:
        for filtered in (False, True):
            filters = {"bucket": "3"} if filtered else None
            allowed = _allowed(len(data), filtered)
            times, found = [], []
            for query in queries[:LATENCY_QUERIES]:
                started = time.perf_counter()
                hits = index.search(query[None, :], k, filters, target="image")[0]
                times.append((time.perf_counter() - started) * 1000)
                found.append([int(hit.id) for hit in hits])
            truth = _truth(data, queries[:LATENCY_QUERIES], k, allowed)
            rows.append(
                _row("Milvus", index_type, filtered, build_s, len(data), found, truth, times, rss)
            )
    return rows


def measure_faiss_filtered(data: np.ndarray, queries: np.ndarray, k: int) -> list[MilvusRow]:
    """FAISS `Flat` as the FAISS backend searches it (indexer.knn.search, one thread, the
    filter as an id selector), on the same vectors, queries and filter."""
    started = time.perf_counter()
    ids = np.arange(len(data), dtype=np.int64)
    index = create_index(IndexSpec("Flat"), data, ids)
    build_s = time.perf_counter() - started
    rss = data.nbytes / 2**20  # what a Flat index holds: its vectors

    def vectors_of(chosen: np.ndarray) -> np.ndarray:
        return data[chosen]

    rows = []
    with knn.faiss_threads(1):
        for filtered in (False, True):
            allowed = _allowed(len(data), filtered)
            times, found = [], []
            for query in queries[:LATENCY_QUERIES]:
                started = time.perf_counter()
                hits = knn.search(
                    index,
                    query[None, :],
                    k,
                    params={},
                    allowed=allowed,
                    vectors_of=vectors_of,
                    all_ids=ids,
                )[0]
                times.append((time.perf_counter() - started) * 1000)
                found.append([int(num) for num, _ in hits])
            truth = _truth(data, queries[:LATENCY_QUERIES], k, allowed)
            rows.append(
                _row("FAISS", "Flat", filtered, build_s, len(data), found, truth, times, rss)
            )
    del index
    return rows


def print_milvus_table(rows: list[MilvusRow], uri: str) -> None:
    print(
        f"\nMilvus at {uri} (three vector fields per row, as `index build` writes them; the "
        "filter on the indexed column attr_bucket) beside FAISS Flat (one vector field; its "
        "RSS figure is the size of its vectors)\n"
    )
    header = (
        f"{'backend':<7} {'index type':<10} {'filter':<12} {'build s':>8} {'vectors/s':>10} "
        f"{'recall@10':>9} {'p50 ms':>8} {'p99 ms':>8} {'RSS +MB':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.backend:<7} {r.index_type:<10} {'bucket=3' if r.filtered else 'none':<12} "
            f"{r.build_s:>8.1f} "
            f"{r.vectors_per_s:>10.0f} {r.recall:>9.3f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.rss_mb:>8.0f}"
        )
