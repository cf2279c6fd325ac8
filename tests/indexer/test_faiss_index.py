"""indexer.faiss_index: type choice, build, remove, save/load, against brute force."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from indexer.errors import IndexCorruptError, IndexTypeError
from indexer.faiss_index import (
    EXACT_MAX,
    IndexSpec,
    check_spec,
    choose_index_spec,
    create_index,
    enable_reconstruct,
    ivf_nlist,
    load_index,
    reconstruct,
    remove_vectors,
    save_index,
    search_parameters,
    stored_ids,
)

DIM = 24


def _unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]]


SPECS = [
    IndexSpec("Flat"),
    IndexSpec("IVF16,Flat", {"nprobe": 16}),  # every list probed: exact
    IndexSpec("HNSW16,Flat", {"efSearch": 256}),
]


def test_flat_up_to_exact_max_then_ivf() -> None:
    assert choose_index_spec(1).factory == "Flat"
    assert choose_index_spec(EXACT_MAX).factory == "Flat"
    big = choose_index_spec(EXACT_MAX + 1)
    assert big.factory.startswith("IVF") and big.factory.endswith(",Flat")
    assert big.search_params["nprobe"] >= 8
    assert choose_index_spec(1_000_000).factory == "IVF4096,Flat"


def test_nlist_grows_with_size_within_bounds() -> None:
    sizes = [10, 10_000, 300_000, 1_000_000, 10**9]
    lists = [ivf_nlist(n) for n in sizes]
    assert lists == sorted(lists)
    assert lists[0] == 256 and lists[-1] == 65536
    assert all(n & (n - 1) == 0 for n in lists)  # powers of two


def test_explicit_factory_gets_default_params() -> None:
    assert choose_index_spec(5, "HNSW32,Flat").search_params == {"efSearch": 128}
    assert choose_index_spec(5, "IVF1024,Flat").search_params == {"nprobe": 64}
    assert choose_index_spec(5, " Flat ").factory == "Flat"


@pytest.mark.parametrize("factory", ["", "IDMap,Flat", "NoSuchIndex12"])
def test_invalid_factory_is_a_clear_error(factory: str) -> None:
    with pytest.raises(IndexTypeError, match="index type"):
        check_spec(choose_index_spec(10, factory), DIM, 10)


def test_ivf_with_too_few_vectors_is_refused_before_encoding() -> None:
    with pytest.raises(IndexTypeError, match="at least 64"):
        check_spec(IndexSpec("IVF64,Flat"), DIM, 10)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.factory)
def test_search_matches_brute_force(spec: IndexSpec) -> None:
    vectors, queries = _unit(800, 0), _unit(20, 1)
    ids = np.arange(800, dtype=np.int64) * 7 + 3  # not positions: ids must map back
    index = create_index(spec, vectors, ids)
    _, found = index.search(queries, 10, params=search_parameters(index, spec.search_params))
    expected = _brute(vectors, ids, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, expected)])
    assert recall == 1.0 if spec.factory != "HNSW16,Flat" else recall >= 0.95


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.factory)
def test_remove_then_search_never_returns_removed(spec: IndexSpec) -> None:
    vectors, queries = _unit(600, 2), _unit(10, 3)
    ids = np.arange(600, dtype=np.int64) + 1000
    index = create_index(spec, vectors, ids)
    gone = ids[::3]
    index = remove_vectors(index, spec, gone)
    assert index.ntotal == 400
    assert set(stored_ids(index).tolist()) == set(ids.tolist()) - set(gone.tolist())
    _, found = index.search(queries, 20, params=search_parameters(index, spec.search_params))
    assert not set(found.ravel().tolist()) & set(gone.tolist())
    keep = ~np.isin(ids, gone)
    expected = _brute(vectors[keep], ids[keep], queries, 5)
    if spec.factory != "HNSW16,Flat":
        np.testing.assert_array_equal(found[:, :5], expected)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.factory)
def test_save_load_round_trip_and_reconstruct(tmp_path: Path, spec: IndexSpec) -> None:
    vectors = _unit(300, 4)
    ids = np.arange(300, dtype=np.int64) * 2
    save_index(create_index(spec, vectors, ids), tmp_path / "x.faiss")
    loaded = load_index(tmp_path / "x.faiss")
    enable_reconstruct(loaded)
    assert loaded.ntotal == 300 and loaded.d == DIM
    np.testing.assert_allclose(reconstruct(loaded, ids[[5, 7]]), vectors[[5, 7]], atol=1e-6)
    assert reconstruct(loaded, ids[:0]).shape == (0, DIM)


def test_load_refuses_missing_damaged_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(IndexCorruptError, match="missing"):
        load_index(tmp_path / "absent.faiss")
    (tmp_path / "junk.faiss").write_bytes(b"not an index at all")
    with pytest.raises(IndexCorruptError, match="junk.faiss"):
        load_index(tmp_path / "junk.faiss")
    faiss.write_index(faiss.IndexFlatIP(DIM), str(tmp_path / "bare.faiss"))
    with pytest.raises(IndexCorruptError, match="id-mapped"):
        load_index(tmp_path / "bare.faiss")


def test_selector_restricts_results() -> None:
    vectors = _unit(200, 5)
    index = create_index(IndexSpec("Flat"), vectors, np.arange(200, dtype=np.int64))
    selector = faiss.IDSelectorBatch(np.array([3, 50, 199], dtype=np.int64))
    _, found = index.search(vectors[:1], 5, params=search_parameters(index, {}, selector))
    assert set(found[0][:3].tolist()) == {3, 50, 199} and list(found[0][3:]) == [-1, -1]
