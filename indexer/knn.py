"""k-nearest-neighbour search over an id-mapped FAISS index, optionally within allowed ids.

The rule: a query gets min(k, number of allowed vectors) results, never fewer. On the
CPU the index searches inside an IDSelector (exact for Flat; IVF and HNSW may come back
short when few ids are allowed); GPU indices do not take selectors, so they search
deeper and filter. Any query still short is answered by exact search over the allowed
vectors, reconstructed from the index.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import faiss
import numpy as np

from indexer.faiss_index import search_parameters

Reconstruct = Callable[[np.ndarray], np.ndarray]  # ids (M,) int64 -> vectors (M, D) float32
Row = list[tuple[int, float]]  # (id, score), best first
EXACT_CHUNK = 65_536
GPU_MAX_K = 2048  # the largest k FAISS GPU indices accept


@contextmanager
def faiss_threads(count: int | None) -> Iterator[None]:
    """Run FAISS calls of this thread on `count` OpenMP threads (None: leave as is).

    OpenMP keeps the thread count per calling thread, so concurrent searches from other
    threads are unaffected. One thread per search suits a service answering a query per
    request: on a busy 2-core machine, two OpenMP threads made one exact search of 44k
    vectors 7x slower (55 ms vs 7.7 ms wall) from spinning at barriers.
    """
    if count is None:
        yield
        return
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def id_selector(allowed: np.ndarray) -> tuple[faiss.IDSelector, np.ndarray]:
    """A bitmap selector over sorted non-negative ids; returns the bitmap too (keep it alive)."""
    mask = np.zeros(int(allowed[-1]) + 1, dtype=bool)
    mask[allowed] = True
    bitmap = np.packbits(mask, bitorder="little")
    return faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap)), bitmap


def exact_search(
    queries: np.ndarray, k: int, ids: np.ndarray, vectors_of: Reconstruct
) -> list[Row]:
    """Brute-force top-k inner product of queries (Q, D) over the vectors of ids (M,)."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(ids), EXACT_CHUNK):
        chunk = ids[start : start + EXACT_CHUNK]
        scores = queries @ vectors_of(chunk).T  # (Q, chunk)
        best_scores = np.concatenate([best_scores, scores], axis=1)
        best_ids = np.concatenate([best_ids, np.broadcast_to(chunk, scores.shape)], axis=1)
        if best_scores.shape[1] > k:
            top = np.argpartition(-best_scores, k - 1, axis=1)[:, :k]
            best_scores = np.take_along_axis(best_scores, top, axis=1)
            best_ids = np.take_along_axis(best_ids, top, axis=1)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    scores = np.take_along_axis(best_scores, order, axis=1)
    found = np.take_along_axis(best_ids, order, axis=1)
    return [list(zip(found[q].tolist(), scores[q].tolist())) for q in range(len(queries))]


def _rows(scores: np.ndarray, labels: np.ndarray, allowed: np.ndarray | None, k: int) -> list[Row]:
    rows = []
    for q in range(len(labels)):
        keep = labels[q] >= 0
        if allowed is not None:
            keep &= np.isin(labels[q], allowed)
        rows.append(list(zip(labels[q][keep][:k].tolist(), scores[q][keep][:k].tolist())))
    return rows


def _deep_search(
    index: faiss.Index, queries: np.ndarray, target: int, allowed: np.ndarray, max_k: int
) -> list[Row]:
    """Search deeper and deeper without a selector until every query has target allowed hits."""
    limit = min(index.ntotal, max_k)
    depth = min(limit, max(target, math.ceil(2 * target * index.ntotal / len(allowed))))
    while True:
        scores, labels = index.search(queries, depth)
        rows = _rows(scores, labels, allowed, target)
        if depth >= limit or all(len(row) >= target for row in rows):
            return rows
        depth = min(limit, depth * 4)


def search(
    index: faiss.Index,
    queries: np.ndarray,
    k: int,
    *,
    params: dict[str, int],
    allowed: np.ndarray | None,
    vectors_of: Reconstruct,
    all_ids: np.ndarray,
    on_gpu: bool = False,
) -> list[Row]:
    """Top-k (id, score) rows for queries (Q, D) float32, each min(k, available) long.

    allowed: sorted ids (M,) int64 to search within, or None for every id;
    all_ids: every id the index holds (M,) int64, for the exact fallback without a filter.
    """
    available = index.ntotal if allowed is None else len(allowed)
    target = min(k, available)
    if target == 0:
        return [[] for _ in range(len(queries))]
    if on_gpu and allowed is not None:
        rows = _deep_search(index, queries, target, allowed, GPU_MAX_K)
    elif on_gpu:
        scores, labels = index.search(queries, min(target, GPU_MAX_K))
        rows = _rows(scores, labels, None, target)
    else:
        selector, _bitmap = id_selector(allowed) if allowed is not None else (None, None)
        scores, labels = index.search(
            queries, target, params=search_parameters(index, params, selector)
        )
        rows = _rows(scores, labels, None, target)
    short = [q for q, row in enumerate(rows) if len(row) < target]
    if short:
        ids = allowed if allowed is not None else all_ids
        for q, row in zip(short, exact_search(queries[short], target, ids, vectors_of)):
            rows[q] = row
    return rows
