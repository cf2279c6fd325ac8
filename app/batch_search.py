"""Searching a micro-batch of queries at once.

Once a batch of queries is encoded, their searches queue here (an `app.batcher`
MicroBatcher that takes whatever is waiting, without waiting for more). The queued
searches are grouped by index, target, filter set and hubness correction
(models.hubness), and each group is one
`index.search` call: an exact index answers the whole group with one matrix product
(indexer.scan) instead of one scan per query. A group searches for the largest k of its
queries and each query keeps its first k hits, which are its own top k; filtered
queries keep the index's rule, k results whenever at least k products match.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.protocols import Hit, SearchIndex
from app.schemas import Target

SearchObserver = Callable[[str, int, float], None]  # (target, queries, seconds)


@dataclass(frozen=True)
class SearchJob:
    """One query's search: its (D,) float32 vector and what to search."""

    index: SearchIndex
    vector: np.ndarray
    k: int
    target: Target
    filters: Mapping[str, Any] | None
    corrected: bool = False  # rank by the hubness-corrected score


def filters_key(filters: Mapping[str, Any] | None) -> Hashable:
    """Equal for filter sets that allow the same products (value order does not matter)."""
    if not filters:
        return ()
    return tuple(
        sorted(
            (name, (value,) if isinstance(value, str) else tuple(sorted(map(str, value))))
            for name, value in filters.items()
        )
    )


def search_jobs(
    jobs: Sequence[SearchJob], observe: SearchObserver | None = None
) -> list[list[Hit]]:
    """Hits of each job (best first, at most its k), one index.search per group of jobs
    sharing index, target, filters and correction."""
    groups: dict[tuple[int, str, Hashable, bool], list[int]] = {}
    for position, job in enumerate(jobs):
        key = (id(job.index), job.target, filters_key(job.filters), job.corrected)
        groups.setdefault(key, []).append(position)
    results: list[list[Hit]] = [[] for _ in jobs]
    for members in groups.values():
        first = jobs[members[0]]
        vectors = np.stack([np.asarray(jobs[m].vector, dtype=np.float32) for m in members])
        k = max(jobs[m].k for m in members)
        started = time.perf_counter()
        rows = first.index.search(
            vectors, k, first.filters, target=first.target, corrected=first.corrected
        )
        if observe is not None:
            observe(first.target, len(members), time.perf_counter() - started)
        for member, row in zip(members, rows, strict=True):
            results[member] = list(row[: jobs[member].k])
    return results
