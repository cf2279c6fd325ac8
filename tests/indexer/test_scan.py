"""indexer.scan: batched matrix-product scans against per-query search and brute force."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest
from indexer_fakes import FakeEncoder, reference_for, unit_queries

from indexer import open_index
from indexer.errors import IndexerError
from indexer.faiss_index import IndexSpec, create_index, remove_vectors
import indexer.scan
from indexer.scan import FlatScan, principal_axes, project, shortlist

DIM = 32


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _clustered(n: int, seed: int) -> np.ndarray:
    """Vectors in tight clusters, as real embeddings are: many near-ties to resolve."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 50), DIM))
    return _unit(centres[rng.integers(0, len(centres), n)] + 0.15 * rng.standard_normal((n, DIM)))


@pytest.fixture
def flat() -> tuple[faiss.Index, np.ndarray, np.ndarray]:
    """An id-mapped flat index whose storage order is not its id order (after a removal
    and an add), with its vectors by id."""
    vectors = _clustered(3000, seed=1)
    ids = np.arange(0, 6000, 2, dtype=np.int64)  # sparse product numbers
    index = create_index(IndexSpec("Flat"), vectors[:2500], ids[:2500])
    index = remove_vectors(index, IndexSpec("Flat"), ids[100:400])
    index.add_with_ids(vectors[2500:], ids[2500:])
    keep = np.r_[0:100, 400:3000]
    return index, ids[keep], vectors[keep]


def _reference(ids, vectors, queries, k, allowed=None):
    mask = np.ones(len(ids), bool) if allowed is None else np.isin(ids, allowed)
    rows = []
    for scores in queries @ vectors.T:
        order = [i for i in np.argsort(-scores, kind="stable") if mask[i]][:k]
        rows.append([(int(ids[i]), float(scores[i])) for i in order])
    return rows


def _same(rows, expected) -> None:
    assert [[n for n, _ in row] for row in rows] == [[n for n, _ in row] for row in expected]
    for row, want in zip(rows, expected, strict=True):
        np.testing.assert_allclose([s for _, s in row], [s for _, s in want], rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "allowed_share", [None, 0.6, 0.05, 0.001]
)  # none, masked, gathered, fewer than k
def test_float32_batch_is_per_query_is_brute_force(flat, allowed_share) -> None:
    index, ids, vectors = flat
    scan = FlatScan(index, "float32")
    queries = _unit(np.random.default_rng(2).standard_normal((16, DIM)))
    allowed = None
    if allowed_share is not None:
        count = max(1, int(allowed_share * len(ids)))
        allowed = np.sort(np.random.default_rng(3).choice(ids, count, replace=False))
    batched = scan.search(queries, 10, allowed)
    one_by_one = [scan.search(q[None, :], 10, allowed)[0] for q in queries]
    _same(batched, one_by_one)
    expected = _reference(ids, vectors, queries, 10, allowed)
    _same(batched, expected)
    want = min(10, len(ids) if allowed is None else len(allowed))
    assert all(len(row) == want for row in batched)  # never fewer than k while k match


def test_float16_scan_recall_against_exact(flat) -> None:
    index, ids, vectors = flat
    queries = _unit(
        vectors[np.random.default_rng(4).choice(len(ids), 200)]
        + 0.05 * np.random.default_rng(5).standard_normal((200, DIM))
    )
    exact = FlatScan(index, "float32").search(queries, 10, None)
    half = FlatScan(index, "float16").search(queries, 10, None)
    found = sum(len({n for n, _ in a} & {n for n, _ in b}) for a, b in zip(exact, half))
    assert found / (10 * len(queries)) >= 0.999
    # The short list is re-scored from the float32 vectors: shared hits score exactly.
    for a, b in zip(exact, half, strict=True):
        scores = dict(a)
        for num, score in b:
            if num in scores:
                assert abs(score - scores[num]) < 1e-5
    assert shortlist(10) > 10


def _low_rank(n: int, rank: int, seed: int) -> np.ndarray:
    """Clustered vectors whose spread lies mostly in `rank` of DIM directions, as learnt
    embeddings' does (the bundled model's photos keep 99% of it in 128 of 512)."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((DIM, DIM)))[0][:, :rank]
    centres = rng.standard_normal((max(1, n // 50), rank))
    codes = centres[rng.integers(0, len(centres), n)] + 0.15 * rng.standard_normal((n, rank))
    return _unit(codes @ basis.T + 0.01 * rng.standard_normal((n, DIM)))


def test_principal_axes_find_the_spread_and_are_orthonormal(monkeypatch) -> None:
    monkeypatch.setattr(indexer.scan, "PCA_CHUNK_ROWS", 7)  # many uneven chunks
    vectors = _low_rank(2000, rank=6, seed=8)
    mean, axes = principal_axes(vectors, 6)
    # Chunked as in one piece: numpy's own eigenvectors (up to sign), and the projection.
    centred = vectors.astype(np.float64) - vectors.mean(axis=0, dtype=np.float64)
    expected = np.linalg.eigh(centred.T @ centred)[1][:, ::-1][:, :6]
    np.testing.assert_allclose(mean, vectors.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(np.abs(np.sum(axes * expected, axis=0)), 1.0, atol=1e-4)
    np.testing.assert_allclose(project(vectors, mean, axes), (vectors - mean) @ axes, atol=1e-5)
    assert axes.shape == (DIM, 6) and mean.shape == (DIM,)
    np.testing.assert_allclose(axes.T @ axes, np.eye(6), atol=1e-5)
    centred = vectors - mean
    kept = np.linalg.norm(centred @ axes, axis=1) ** 2
    assert kept.sum() / (np.linalg.norm(centred, axis=1) ** 2).sum() > 0.99


@pytest.mark.parametrize("engine", ["auto", "numpy"])
def test_pca_scan_recall_against_exact_with_exact_scores(monkeypatch, engine) -> None:
    """ "auto" runs the first pass in OpenVINO (installed with the test extras; bfloat16
    where the CPU has it), "numpy" in BLAS: both re-score exactly."""
    monkeypatch.setattr(indexer.scan, "PCA_DIMS", 8)
    vectors = _low_rank(3000, rank=8, seed=9)
    ids = np.arange(3000, dtype=np.int64) * 3
    index = create_index(IndexSpec("Flat"), vectors, ids)
    rng = np.random.default_rng(10)
    queries = _unit(vectors[rng.choice(3000, 200)] + 0.05 * rng.standard_normal((200, DIM)))
    reduced = FlatScan(index, "pca", engine)
    assert reduced.first_pass == ("openvino" if engine == "auto" else "numpy")
    assert reduced.nbytes == 3000 * 8 * 4  # a quarter of DIM, float32
    one = [reduced.search(query[None, :], 10, None)[0] for query in queries[:20]]
    assert one == reduced.search(queries[:20], 10, None)  # alone as in a batch
    for allowed in (None, np.sort(ids[::3])):  # a third allowed: scanned whole, masked
        rows = reduced.search(queries, 10, allowed)
        expected = _reference(ids, vectors, queries, 10, allowed)
        found = sum(len({n for n, _ in a} & {n for n, _ in b}) for a, b in zip(rows, expected))
        assert found / (10 * len(queries)) >= 0.999
        for row, want in zip(rows, expected, strict=True):  # re-scored: exact scores
            scores = dict(want)
            assert all(abs(score - scores[n]) < 1e-5 for n, score in row if n in scores)
    assert shortlist(10, "pca") > shortlist(10, "float16")


def test_pca_of_short_vectors_is_the_float32_scan(flat, monkeypatch) -> None:
    """Vectors no longer than PCA_DIMS are scanned whole and exactly, without a copy."""
    monkeypatch.setattr(indexer.scan, "PCA_DIMS", DIM)
    index, ids, vectors = flat
    scan = FlatScan(index, "pca")
    assert scan.nbytes == 0
    queries = _unit(np.random.default_rng(4).standard_normal((6, DIM)))
    _same(scan.search(queries, 10, None), _reference(ids, vectors, queries, 10))


@pytest.mark.parametrize("storage", ["float16", "pca"])
def test_approximate_scans_keep_the_filter_and_k(flat, storage, monkeypatch) -> None:
    monkeypatch.setattr(indexer.scan, "PCA_DIMS", 8)
    index, ids, _ = flat
    scan = FlatScan(index, storage)
    queries = _unit(np.random.default_rng(6).standard_normal((5, DIM)))
    allowed = np.sort(ids[::7])
    rows = scan.search(queries, 20, allowed)
    assert all(len(row) == 20 and {n for n, _ in row} <= set(allowed) for row in rows)
    assert all(len(row) == 3 for row in scan.search(queries, 20, allowed[:3]))
    assert scan.search(queries, 5, np.zeros(0, np.int64)) == [[]] * 5


def test_a_non_flat_index_is_refused() -> None:
    vectors = _clustered(600, seed=7)
    ivf = create_index(IndexSpec("IVF4,Flat"), vectors, np.arange(600, dtype=np.int64))
    with pytest.raises(IndexerError, match="flat index"):
        FlatScan(ivf, "float16")


@pytest.mark.parametrize("scan", ["float32", "float16", "pca"])
@pytest.mark.parametrize("target", ["image", "text", "product"])
def test_open_index_batched_equals_per_query(
    built_index: Path, small_catalog: Path, fake_encoder: FakeEncoder, scan: str, target: str
) -> None:
    """The service searches a micro-batch at once: the same hits as one query at a time
    and as FAISS's own search, with and without filters (k whenever k match)."""
    queries = unit_queries(8)
    reference = reference_for(small_catalog, fake_encoder)
    gender = reference.attributes[0]["gender"]
    with open_index(built_index, scan=scan) as index, open_index(built_index) as plain:
        for filters in (None, {"gender": gender}, {"gender": gender, "articleType": ["x"]}):
            batched = index.search(queries, 7, filters, target=target)
            single = [index.search(q[None, :], 7, filters, target=target)[0] for q in queries]
            faiss_rows = plain.search(queries, 7, filters, target=target)
            for rows in (single, faiss_rows):
                assert [[h.id for h in r] for r in batched] == [[h.id for h in r] for r in rows]
                np.testing.assert_allclose(
                    [[h.score for h in r] for r in batched],
                    [[h.score for h in r] for r in rows],
                    atol=1e-5,
                )


def test_unknown_scan_is_a_clear_error(built_index: Path) -> None:
    with pytest.raises(IndexerError, match="unknown scan 'bf16'"):
        open_index(built_index, scan="bf16")  # type: ignore[arg-type]


def test_set_blas_threads_limits_numpy_blas() -> None:
    """The service's scans run on one BLAS thread (as FAISS searches there)."""
    from threadpoolctl import threadpool_info

    def numpy_blas() -> list[int]:
        site = Path(np.__file__).resolve().parents[1]
        return [
            info["num_threads"]
            for info in threadpool_info()
            if info["user_api"] == "blas"
            and any(
                Path(info["filepath"]).resolve().is_relative_to(site / d)
                for d in ("numpy", "numpy.libs")
            )
        ]

    before = numpy_blas()
    try:
        for count in (2, 1):
            indexer.scan.set_blas_threads(count)
            assert numpy_blas() and set(numpy_blas()) == {count}
    finally:
        indexer.scan.set_blas_threads(max(before or [1]))
