"""Retrieval metrics over a score matrix, checked against brute force in the tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

KS = (1, 5, 10)


def ranked_relevance(
    scores: np.ndarray,
    query_labels: Sequence[object],
    gallery_labels: Sequence[object],
    *,
    chunk: int = 512,
) -> np.ndarray:
    """(Q, G) scores -> (Q, G) bool: is the item at each rank relevant (same label), best first.

    Ties are broken by gallery order (stable sort), so results are deterministic.
    """
    query = np.asarray(_codes(query_labels, gallery_labels)[0])
    gallery = np.asarray(_codes(query_labels, gallery_labels)[1])
    out = np.empty(scores.shape, dtype=bool)
    for start in range(0, scores.shape[0], chunk):
        order = np.argsort(-scores[start : start + chunk], axis=1, kind="stable")
        out[start : start + chunk] = gallery[order] == query[start : start + chunk, None]
    return out


def _codes(
    query_labels: Sequence[object], gallery_labels: Sequence[object]
) -> tuple[list[int], list[int]]:
    index: dict[object, int] = {}
    gallery = [index.setdefault(label, len(index)) for label in gallery_labels]
    query = [index.get(label, -1) for label in query_labels]
    return query, gallery


def per_query(relevant: np.ndarray, *, recall: str = "hit") -> dict[str, np.ndarray]:
    """Per-query metrics from a (Q, G) ranked-relevance matrix (see `summarise`)."""
    totals = relevant.sum(axis=1)
    first = relevant.argmax(axis=1) + 1
    values: dict[str, np.ndarray] = {}
    for k in KS:
        found = relevant[:, :k].sum(axis=1)
        values[f"R@{k}"] = (found > 0).astype(float) if recall == "hit" else found / totals
    hits = np.cumsum(relevant, axis=1, dtype=np.int32)
    ranks = np.arange(1, relevant.shape[1] + 1, dtype=np.float32)
    values["mAP"] = np.where(relevant, hits / ranks, 0.0).sum(axis=1) / totals
    values["MRR@10"] = np.where(first <= 10, 1.0 / first, 0.0)
    values["rank"] = first.astype(float)
    return values


def summarise(relevant: np.ndarray, *, recall: str = "hit", chunk: int = 256) -> dict[str, float]:
    """Metrics from a (Q, G) ranked-relevance matrix.

    recall="hit": R@k = share of queries with a relevant item in the top k (the seed's);
    recall="share": R@k = share of a query's relevant items found in the top k, averaged
    (public fashion benchmarks). Median rank is of the first relevant item (1-based);
    mAP is the mean average precision over all relevant items; MRR@10 counts 0 past 10.
    Queries with no relevant item in the gallery are left out.
    """
    if recall not in ("hit", "share"):
        raise ValueError(f"recall must be 'hit' or 'share', not {recall!r}")
    relevant = relevant[relevant.any(axis=1)]
    if len(relevant) == 0:
        raise ValueError("no query has a relevant item in the gallery")
    parts = [
        per_query(relevant[i : i + chunk], recall=recall) for i in range(0, len(relevant), chunk)
    ]
    joined = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    metrics = {name: float(np.mean(values)) for name, values in joined.items() if name != "rank"}
    metrics["median_rank"] = float(np.median(joined["rank"]))
    metrics["queries"] = float(len(relevant))
    return metrics


def precision_summary(relevant: np.ndarray, ks: Sequence[int] = (1, 10)) -> dict[str, float]:
    """Category-task metrics from a (Q, G) ranked-relevance matrix: P@k, the share of
    the top k that is relevant, and MRR, the mean reciprocal rank of the first relevant
    item (no cut-off). Queries with no relevant item in the gallery are left out."""
    relevant = relevant[relevant.any(axis=1)]
    if len(relevant) == 0:
        raise ValueError("no query has a relevant item in the gallery")
    metrics = {f"P@{k}": float((relevant[:, :k].sum(axis=1) / k).mean()) for k in ks}
    metrics["MRR"] = float(np.mean(1.0 / (relevant.argmax(axis=1) + 1)))
    metrics["queries"] = float(len(relevant))
    return metrics
