"""The Milvus side of benchmarks/bench_index.py (--backend milvus or both).

Writes the vectors into a Milvus collection with the schema `index build --backend
milvus` uses (each vector in the image, text and product fields; an attribute `bucket`
with ten values to filter on), indexes it as the indexer chooses for its size
(indexer.milvus.schema.choose_milvus_index), publishes it under an alias and searches it
through indexer.milvus's MilvusIndex, as the service does: one query at a time.
"""

from __future__ import annotations

import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.milvus.build import INSERT_ROWS, new_manifest
from indexer.milvus.connection import MilvusLocation, connect
from indexer.milvus.schema import (
    ATTRIBUTES_FIELD,
    ID_FIELD,
    PHOTO_FIELD,
    PHOTO_SHA_FIELD,
    TITLE_FIELD,
    VECTOR_FIELDS,
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
    client = connect(location)
    started = time.perf_counter()
    try:
        name = next_version(client, location)
        client.create_collection(name, schema=create_schema(data.shape[1]))
        for start in range(0, len(data), INSERT_ROWS):
            rows = []
            for i in range(start, min(start + INSERT_ROWS, len(data))):
                row = {ID_FIELD: str(i), TITLE_FIELD: "", PHOTO_FIELD: "", PHOTO_SHA_FIELD: ""}
                row[ATTRIBUTES_FIELD] = {"bucket": str(i % BUCKETS)}
                row.update(dict.fromkeys(VECTOR_FIELDS.values(), data[i]))
                rows.append(row)
            client.insert(name, rows)
        client.flush(name)
        client.create_index(name, index_params(client, spec))
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
        )
        client.alter_collection_properties(name, properties=manifest_property(manifest))
        switch_alias(client, location, name)
        prune_versions(client, location, keep=1)
    finally:
        client.close()
    return time.perf_counter() - started, spec.index_type


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
            allowed = np.flatnonzero(np.arange(len(data)) % BUCKETS == 3) if filtered else None
            pool = data if allowed is None else data[allowed]
            scores = queries @ pool.T
            truth = np.argsort(-scores, axis=1)[:, :k]
            if allowed is not None:
                truth = allowed[truth]
            times, found = [], []
            for query in queries[:LATENCY_QUERIES]:
                started = time.perf_counter()
                hits = index.search(query[None, :], k, filters, target="image")[0]
                times.append((time.perf_counter() - started) * 1000)
                found.append([int(hit.id) for hit in hits])
            recall = float(
                np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth, strict=False)])
            )
            times.sort()
            rows.append(
                MilvusRow(
                    index_type,
                    filtered,
                    build_s,
                    len(data) / build_s,
                    recall,
                    statistics.median(times),
                    times[int(0.99 * (len(times) - 1))],
                    rss,
                )
            )
    return rows


def print_milvus_table(rows: list[MilvusRow], uri: str) -> None:
    print(f"\nMilvus at {uri} (three vector fields per row, as `index build` writes them)\n")
    header = (
        f"{'index type':<10} {'filter':<12} {'build s':>8} {'vectors/s':>10} {'recall@10':>9} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'RSS +MB':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.index_type:<10} {'bucket=3' if r.filtered else 'none':<12} {r.build_s:>8.1f} "
            f"{r.vectors_per_s:>10.0f} {r.recall:>9.3f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.rss_mb:>8.0f}"
        )
