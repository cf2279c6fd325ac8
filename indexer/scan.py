"""Exact indices scanned as one matrix product per batch of queries.

FAISS's flat index scans its vectors once per query below its BLAS threshold (20
queries), so 16 queries searched together cost 16 scans. A `FlatScan` keeps a target's
vectors as a matrix and answers a whole batch with one product: the vectors are read
once for the batch.

Storage ("scan"):
- "float32": FAISS's own vectors, shared without a copy; exact.
- "float16": a half-size copy, half the bytes read per scan. It picks a short list of
  `shortlist(k)` candidates per query, which are then re-scored from the float32
  vectors, so the returned scores and their order are exact; only a true top-k item
  that float16 rounding pushed out of the short list can be missed
  (benchmarks/bench_scan.py measures that recall on a real index).
- "pca": the same with a float32 copy of the vectors' first `PCA_DIMS` principal
  components (a quarter of the bytes of 512-d float32) and a longer short list. Learnt
  embeddings keep almost all their variance in few directions (99% in 128 of 512 for
  the bundled model's photos), so the coarse scores rank the true top k well inside
  the short list; the scores returned are again exact.
- "faiss": no FlatScan; FAISS searches (the path before batching, kept to compare).

"float32" and "pca", the service's scan, are numpy (its BLAS: one thread in the
service, set_blas_threads), so the CPU service never imports PyTorch. "float16" keeps
PyTorch, imported when such a scan is opened: numpy has no fast float16 matrix product
(it converts element by element, many times slower than float32), PyTorch's CPU kernels
have one. The pca copy is float32 for the same reason: twice the bytes of float16
(21 MB instead of 11 MB per 41k-product target), read by BLAS at full speed. Where
OpenVINO is installed the pca scan's first pass over all rows runs there instead
for batches of queries (indexer.scan_openvino: bfloat16 on CPUs that have it, faster
than BLAS from two queries on; one query stays a BLAS matrix-vector product). The
short list is re-scored exactly all the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import faiss
import numpy as np

from indexer.errors import IndexerError
from indexer.faiss_index import inner_index, stored_ids
from indexer.scan_openvino import OpenVinoProduct
from models.encoders import openvino_available

if TYPE_CHECKING:
    import torch

Scan = Literal["faiss", "float32", "float16", "pca"]
SCANS: tuple[Scan, ...] = ("faiss", "float32", "float16", "pca")
Storage = Literal["float32", "float16", "pca"]
Engine = Literal["auto", "numpy"]  # the pca first pass: OpenVINO when installed, or numpy
PCA_DIMS = 128
# The principal components are fitted on at most this many vectors (evenly spaced).
PCA_FIT_ROWS = 50_000
# Rows per step when fitting and projecting: the float64 / float32 temporaries stay a
# few MB however large the index (opening it must not need a second copy of it).
PCA_CHUNK_ROWS = 8_192
Row = list[tuple[int, float]]  # (product number, score), best first
# Below this share of allowed vectors, their rows are gathered and scanned alone;
# above it, everything is scanned and the others are masked (cheaper than the copy).
GATHER_BELOW = 0.25


def shortlist(k: int, storage: Storage = "float16") -> int:
    """Candidates per query re-scored exactly after an approximate scan."""
    if storage == "pca":
        return max(4 * k, k + 256)
    return max(2 * k, k + 64)


def principal_axes(vectors: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), axes (D, dims)) of the rows' first `dims` principal components.

    Centering does not change a query's ranking: q.x = q.mean + q.(x - mean), and the
    first term is the same for every x.
    """
    sample = vectors[:: max(1, len(vectors) // PCA_FIT_ROWS)]  # a view
    mean = sample.mean(axis=0, dtype=np.float64)
    scatter = np.zeros((vectors.shape[1], vectors.shape[1]))
    for start in range(0, len(sample), PCA_CHUNK_ROWS):
        centred = sample[start : start + PCA_CHUNK_ROWS] - mean  # float64, one chunk
        scatter += centred.T @ centred
    _, axes = np.linalg.eigh(scatter)  # ascending eigenvalues
    top = axes[:, ::-1][:, :dims]
    return mean.astype(np.float32), np.ascontiguousarray(top, dtype=np.float32)


def project(vectors: np.ndarray, mean: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """(N, dims) float32 coordinates of the rows on `axes`, a chunk at a time."""
    out = np.empty((len(vectors), axes.shape[1]), dtype=np.float32)
    for start in range(0, len(vectors), PCA_CHUNK_ROWS):
        chunk = vectors[start : start + PCA_CHUNK_ROWS] - mean
        out[start : start + len(chunk)] = chunk @ axes
    return out


def set_blas_threads(count: int) -> None:
    """Numpy's BLAS (the float32 and pca scans) on `count` threads, process-wide.

    The service searches on one thread per call, as FAISS does there (indexer.knn): its
    requests run in parallel already, and BLAS threads spinning between calls would take
    the cores from encoding. Only the BLAS numpy ships with is limited (not FAISS's own),
    or every BLAS where numpy uses a shared one (conda, a system OpenBLAS).
    """
    from threadpoolctl import ThreadpoolController

    blas = ThreadpoolController().select(user_api="blas").lib_controllers
    site = Path(np.__file__).resolve().parents[1]
    ours = (site / "numpy", site / "numpy.libs")  # the wheel's copy (numpy/.dylibs on macOS)
    bundled = [
        lib for lib in blas if any(Path(lib.filepath).resolve().is_relative_to(d) for d in ours)
    ]
    for lib in bundled or blas:
        lib.set_num_threads(count)


def check_scan(scan: str) -> Scan:
    if scan not in SCANS:
        raise IndexerError(f"unknown scan {scan!r}; use one of {', '.join(SCANS)}")
    return scan  # checked above


def is_flat(index: faiss.Index) -> bool:
    """An exact flat index on the CPU (the only kind a FlatScan can read)."""
    return isinstance(inner_index(index), faiss.IndexFlat)


class FlatScan:
    """Batched exact search over the vectors of a CPU `IndexFlat` (possibly id-mapped)."""

    def __init__(self, index: faiss.Index, storage: Storage, engine: Engine = "auto") -> None:
        flat = inner_index(index)
        if not isinstance(flat, faiss.IndexFlat):
            raise IndexerError(f"a {storage} scan needs a flat index, not {type(flat).__name__}")
        n, dim = index.ntotal, index.d
        self._index = index  # owns the memory the views below point into
        # A view of FAISS's vectors in storage order: no copy.
        self._float32 = faiss.rev_swig_ptr(flat.get_xb(), n * dim).reshape(n, dim)
        self.storage = storage
        # What the first pass reads: numpy's (the vectors, or their pca coordinates) or,
        # for "float16", PyTorch's half-size copy.
        self._matrix: np.ndarray = self._float32
        self._projection: np.ndarray | None = None  # (D, PCA_DIMS) for "pca"
        self._half: torch.Tensor | None = None
        self._product: OpenVinoProduct | None = None  # the pca first pass, all rows
        if storage == "pca" and n > 0 and dim > PCA_DIMS:
            mean, axes = principal_axes(self._float32, PCA_DIMS)
            self._projection = axes
            self._matrix = project(self._float32, mean, axes)
            if engine == "auto" and openvino_available():
                self._product = OpenVinoProduct(self._matrix)
        elif storage == "float16":
            import torch  # numpy has no fast float16 matrix product (module docstring)

            self._half = torch.from_numpy(self._float32).to(torch.float16)
        # float32, and "pca" of vectors no longer than PCA_DIMS: the vectors, exact.
        self._exact = self._projection is None and self._half is None
        self._nums = stored_ids(index)  # product number of each stored row
        self._by_num = np.argsort(self._nums, kind="stable")
        self._sorted_nums = self._nums[self._by_num]

    def __len__(self) -> int:
        return len(self._nums)

    @property
    def first_pass(self) -> str:
        """What computes the pca scan's coarse scores over all rows."""
        return "numpy" if self._product is None else "openvino"

    @property
    def nbytes(self) -> int:
        """Memory the scan adds beyond FAISS's own vectors."""
        if self._half is not None:
            return self._half.numel() * self._half.element_size()
        return 0 if self._exact else self._matrix.nbytes

    def positions_of(self, nums: np.ndarray) -> np.ndarray:
        """Sorted storage rows (M,) int64 of product numbers (unknown ones dropped)."""
        if len(self._sorted_nums) == 0:
            return np.zeros(0, dtype=np.int64)
        found = np.minimum(np.searchsorted(self._sorted_nums, nums), len(self._sorted_nums) - 1)
        found = found[self._sorted_nums[found] == nums]
        return np.sort(self._by_num[found])

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> list[Row]:
        """queries (Q, D) float32 -> per query min(k, allowed) (number, score) rows.

        allowed: sorted product numbers (M,) to search within, or None for all.
        """
        rows = None if allowed is None else self.positions_of(allowed)
        available = len(self) if rows is None else len(rows)
        target = min(k, available)
        if target == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        depth = target if self._exact else min(available, shortlist(target, self.storage))
        if self._half is not None:
            positions = self._half_top(queries, rows, depth)
            top_scores = self._rescore(queries, positions)
        else:
            scores, columns = self._scores(queries, rows)
            top = _top_columns(scores, depth)
            positions = top if columns is None else columns[top]  # (Q, depth) storage rows
            if self._exact:
                top_scores = np.take_along_axis(scores, top, axis=1)
            else:
                top_scores = self._rescore(queries, positions)
        order = np.argsort(-top_scores, axis=1, kind="stable")[:, :target]
        best = np.take_along_axis(positions, order, axis=1)
        best_scores = np.take_along_axis(top_scores, order, axis=1)
        nums = self._nums[best]
        return [
            list(zip(nums[q].tolist(), best_scores[q].tolist(), strict=True))
            for q in range(len(queries))
        ]

    def _subset(self, rows: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """How to scan the allowed rows: (rows to gather when few, else None; a mask of
        the rows to exclude when many, else None)."""
        if rows is None:
            return None, None
        if len(rows) < GATHER_BELOW * len(self):
            return rows, None
        masked = np.ones(len(self), dtype=bool)
        masked[rows] = False
        return None, masked

    def _scores(
        self, queries: np.ndarray, rows: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(Q, M) float32 scores over all rows, or the allowed ones: gathered when few
        (then the second value maps columns to storage rows), else masked with -inf."""
        columns, masked = self._subset(rows)
        matrix = self._matrix if columns is None else self._matrix[columns]
        query = queries if self._projection is None else queries @ self._projection
        if len(query) == 1:  # a matrix-vector product, the vectors read once (BLAS beats
            scores = (matrix @ query[0])[None, :]  # OpenVINO's call overhead here)
        elif self._product is not None and columns is None:
            scores = self._product(np.ascontiguousarray(query, dtype=np.float32))
        else:
            scores = query @ matrix.T
        if masked is not None:
            scores[:, masked] = -np.inf
        return scores, columns

    def _half_top(self, queries: np.ndarray, rows: np.ndarray | None, depth: int) -> np.ndarray:
        """Storage rows (Q, depth) of the best float16 scores (PyTorch), unordered."""
        import torch

        assert self._half is not None
        columns, masked = self._subset(rows)
        matrix = self._half if columns is None else self._half[torch.from_numpy(columns)]
        query = torch.from_numpy(queries).to(torch.float16)
        # One query: a matrix-vector product (torch's float16 path for a 1-row
        # matrix product is slower than reading the vectors once).
        scores = (matrix @ query[0]).unsqueeze(0) if len(query) == 1 else query @ matrix.T
        if masked is not None:
            scores.masked_fill_(torch.from_numpy(masked), float("-inf"))
        top = torch.topk(scores, depth, dim=1, sorted=False).indices.numpy()
        return top if columns is None else columns[top]

    def _rescore(self, queries: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Exact float32 scores (Q, depth) of the short lists."""
        vectors = self._float32[positions]  # (Q, depth, D)
        return np.einsum("qd,qcd->qc", queries, vectors)


def _top_columns(scores: np.ndarray, depth: int) -> np.ndarray:
    """Columns (Q, depth) of each row's `depth` highest scores, in no particular order:
    a partial selection (np.argpartition), cheaper than sorting every score."""
    width = scores.shape[1]
    if depth >= width:
        return np.broadcast_to(np.arange(width), scores.shape).copy()
    return np.argpartition(scores, width - depth, axis=1)[:, width - depth :]
