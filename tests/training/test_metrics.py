"""training.metrics against a brute-force reference: explicit loops over each query's ranking."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from training.metrics import ranked_relevance, summarise

REL = 1e-6


def reference(
    scores: np.ndarray, query_labels: list, gallery_labels: list, recall: str
) -> dict[str, float]:
    """Plain-Python metrics: rank the gallery by score (ties: gallery order), then count."""
    sums = {"R@1": 0.0, "R@5": 0.0, "R@10": 0.0, "mAP": 0.0, "MRR@10": 0.0}
    first_ranks = []
    for q, label in enumerate(query_labels):
        order = sorted(range(len(gallery_labels)), key=lambda g: (-scores[q][g], g))
        relevant_ranks = [r + 1 for r, g in enumerate(order) if gallery_labels[g] == label]
        if not relevant_ranks:
            continue  # no relevant item: the query is left out
        for k in (1, 5, 10):
            found = sum(1 for r in relevant_ranks if r <= k)
            sums[f"R@{k}"] += (
                (1.0 if found else 0.0) if recall == "hit" else found / len(relevant_ranks)
            )
        precisions = [(i + 1) / r for i, r in enumerate(relevant_ranks)]
        sums["mAP"] += sum(precisions) / len(relevant_ranks)
        sums["MRR@10"] += 1.0 / relevant_ranks[0] if relevant_ranks[0] <= 10 else 0.0
        first_ranks.append(relevant_ranks[0])
    result = {name: total / len(first_ranks) for name, total in sums.items()}
    result["median_rank"] = float(statistics.median(first_ranks))
    result["queries"] = float(len(first_ranks))
    return result


def _case(seed: int, queries: int, gallery: int, labels: int) -> tuple[np.ndarray, list, list]:
    rng = np.random.default_rng(seed)
    gallery_labels = [f"title-{v}" for v in rng.integers(0, labels, gallery)]  # repeated labels
    query_labels = [
        f"title-{v}" for v in rng.integers(0, labels + 3, queries)
    ]  # some with no match
    return rng.standard_normal((queries, gallery)), query_labels, gallery_labels


def _assert_matches(got: dict[str, float], want: dict[str, float]) -> None:
    assert set(got) == set(want)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=REL, abs=1e-12), name


@pytest.mark.parametrize("recall", ["hit", "share"])
@pytest.mark.parametrize(
    ("seed", "queries", "gallery", "labels"), [(0, 40, 60, 12), (1, 25, 200, 40), (2, 7, 9, 3)]
)
def test_metrics_match_brute_force(
    seed: int, queries: int, gallery: int, labels: int, recall: str
) -> None:
    scores, query_labels, gallery_labels = _case(seed, queries, gallery, labels)
    got = summarise(
        ranked_relevance(scores, query_labels, gallery_labels, chunk=7), recall=recall, chunk=5
    )
    _assert_matches(got, reference(scores.tolist(), query_labels, gallery_labels, recall))


def test_ties_are_broken_by_gallery_order() -> None:
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 3, (30, 50)).astype(np.float32)  # many equal scores
    query_labels = list(rng.integers(0, 8, 30))
    gallery_labels = list(rng.integers(0, 8, 50))
    relevant = ranked_relevance(scores, query_labels, gallery_labels)
    for recall in ("hit", "share"):
        _assert_matches(
            summarise(relevant, recall=recall),
            reference(scores.tolist(), query_labels, gallery_labels, recall),
        )


def test_chunking_does_not_change_anything() -> None:
    scores, query_labels, gallery_labels = _case(4, 50, 80, 10)
    whole = ranked_relevance(scores, query_labels, gallery_labels)
    np.testing.assert_array_equal(
        ranked_relevance(scores, query_labels, gallery_labels, chunk=3), whole
    )
    assert summarise(whole, chunk=1) == summarise(whole)


def test_a_perfect_ranking() -> None:
    labels = ["a", "a", "b", "c", "c", "c"]
    scores = np.array([[1.0 if g == q else 0.0 for g in labels] for q in labels])
    for recall in ("hit", "share"):
        metrics = summarise(ranked_relevance(scores, labels, labels), recall=recall)
        # share: each "a" query finds 1 of 2, "b" 1 of 1, each "c" 1 of 3 -> (2/2 + 1 + 3/3) / 6
        assert metrics["R@1"] == (1.0 if recall == "hit" else pytest.approx(0.5))
        assert metrics["mAP"] == metrics["MRR@10"] == metrics["R@5"] == 1.0
        assert metrics["median_rank"] == 1.0 and metrics["queries"] == 6.0


def test_bad_arguments() -> None:
    relevant = np.zeros((2, 3), dtype=bool)
    with pytest.raises(ValueError, match="no query has a relevant item"):
        summarise(relevant)
    with pytest.raises(ValueError, match="recall must be 'hit' or 'share'"):
        summarise(relevant | True, recall="mean")
