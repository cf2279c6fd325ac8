"""indexer.knn: min(k, allowed) results, always, checked against brute force."""

from __future__ import annotations

import threading

import faiss
import numpy as np
import pytest

from indexer.faiss_index import IndexSpec, create_index, enable_reconstruct, reconstruct
from indexer.knn import exact_search, faiss_threads, search

DIM = 16
N = 1500


def _unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


VECTORS = _unit(N, 0)
IDS = np.arange(N, dtype=np.int64) * 3 + 1
QUERIES = _unit(8, 1)


def _brute(allowed: np.ndarray | None, k: int) -> list[list[int]]:
    ids = IDS if allowed is None else allowed
    vectors = VECTORS[np.searchsorted(IDS, ids)]
    order = np.argsort(-(QUERIES @ vectors.T), axis=1, kind="stable")[:, :k]
    return [ids[row].tolist() for row in order]


def _index(spec: IndexSpec):
    index = create_index(spec, VECTORS, IDS)
    enable_reconstruct(index)
    return index


# Deliberately weak settings: IVF probing 1 list of 32, HNSW exploring little, so
# selective filters come back short and the exact fallback has to fill in.
WEAK = [
    IndexSpec("Flat"),
    IndexSpec("IVF32,Flat", {"nprobe": 1}),
    IndexSpec("HNSW8,Flat", {"efSearch": 16}),
]
ALLOWED = {
    "one": IDS[[700]],
    "fewer-than-k": IDS[[5, 900, 1499]],
    "sparse": IDS[::97],
    "half": IDS[::2],
}


@pytest.mark.parametrize("on_gpu", [False, True], ids=["selector", "deep-search"])
@pytest.mark.parametrize("allowed_name", list(ALLOWED))
@pytest.mark.parametrize("spec", WEAK, ids=lambda s: s.factory)
def test_never_fewer_than_k_when_enough_match(spec, allowed_name, on_gpu) -> None:
    index = _index(spec)
    allowed = ALLOWED[allowed_name]
    k = 10
    rows = search(
        index,
        QUERIES,
        k,
        params=spec.search_params,
        allowed=allowed,
        vectors_of=lambda ids: reconstruct(index, ids),
        all_ids=IDS,
        on_gpu=on_gpu,
    )
    want = min(k, len(allowed))
    assert all(len(row) == want for row in rows)
    allowed_set = set(allowed.tolist())
    for row in rows:
        assert {i for i, _ in row} <= allowed_set
        scores = [s for _, s in row]
        assert scores == sorted(scores, reverse=True)
    if spec.factory == "Flat" or len(allowed) <= 50:  # exact paths
        assert [[i for i, _ in row] for row in rows] == _brute(allowed, k)


def test_flat_without_filter_is_exact() -> None:
    index = _index(IndexSpec("Flat"))
    rows = search(
        index,
        QUERIES,
        7,
        params={},
        allowed=None,
        vectors_of=lambda ids: reconstruct(index, ids),
        all_ids=IDS,
    )
    assert [[i for i, _ in row] for row in rows] == _brute(None, 7)
    expected_scores = np.sort(QUERIES @ VECTORS.T, axis=1)[:, ::-1][:, :7]
    np.testing.assert_allclose([[s for _, s in row] for row in rows], expected_scores, rtol=1e-5)


def test_k_larger_than_the_index_returns_everything() -> None:
    index = _index(IndexSpec("HNSW8,Flat", {"efSearch": 16}))
    rows = search(
        index,
        QUERIES[:2],
        N + 50,
        params={"efSearch": 16},
        allowed=None,
        vectors_of=lambda ids: reconstruct(index, ids),
        all_ids=IDS,
    )
    assert [len(row) for row in rows] == [N, N]
    assert sorted(i for i, _ in rows[0]) == IDS.tolist()


def test_empty_filter_result_gives_empty_rows() -> None:
    index = _index(IndexSpec("Flat"))
    rows = search(
        index,
        QUERIES,
        5,
        params={},
        allowed=np.zeros(0, dtype=np.int64),
        vectors_of=lambda ids: reconstruct(index, ids),
        all_ids=IDS,
    )
    assert rows == [[] for _ in QUERIES]


def test_exact_search_chunks_agree_with_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    index = _index(IndexSpec("Flat"))
    whole = exact_search(QUERIES, 12, IDS, lambda ids: reconstruct(index, ids))
    monkeypatch.setattr("indexer.knn.EXACT_CHUNK", 100)
    chunked = exact_search(QUERIES, 12, IDS, lambda ids: reconstruct(index, ids))
    assert [[i for i, _ in r] for r in whole] == [[i for i, _ in r] for r in chunked]
    assert [[i for i, _ in r] for r in whole] == _brute(None, 12)


def test_faiss_threads_is_per_thread_and_restored() -> None:
    outer = faiss.omp_get_max_threads()
    seen: dict[str, int] = {}

    def other() -> None:
        seen["other"] = faiss.omp_get_max_threads()

    with faiss_threads(1):
        seen["inside"] = faiss.omp_get_max_threads()
        worker = threading.Thread(target=other)
        worker.start()
        worker.join()
    assert seen["inside"] == 1
    assert faiss.omp_get_max_threads() == outer
    with faiss_threads(None):
        assert faiss.omp_get_max_threads() == outer
