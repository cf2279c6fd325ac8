"""FAISS indices over L2-normalised float32 vectors, searched by inner product.

Vectors carry the store's integer product numbers so they can be removed or replaced
one by one: IVF indices hold ids natively; every other type is wrapped in an
`IndexIDMap2` (IDMap over IVF would mislabel vectors after a removal, as IVF does not
renumber). The index
type is chosen by size: exact `Flat` up to `EXACT_MAX` products (quantised image indices
cost text queries much recall), an IVF over flat vectors beyond that, with `nprobe` set
for recall@10 >= 0.95 of exact search (see benchmarks/bench_index.py).
"""

from __future__ import annotations

import errno
import math
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from indexer.errors import IndexCorruptError, IndexTypeError

EXACT_MAX = 200_000
DEFAULT_EF_SEARCH = 128
TRAIN_POINTS_PER_LIST = 64
SEED = 1234


@dataclass(frozen=True)
class IndexSpec:
    """A FAISS factory string and the search parameters to use with it."""

    factory: str
    search_params: dict[str, int] = field(default_factory=dict)


def ivf_nlist(n: int) -> int:
    """Inverted lists for n vectors: the power of two nearest 4*sqrt(n), within [256, 65536]."""
    target = 4.0 * math.sqrt(max(n, 1))
    return int(min(65536, max(256, 2 ** round(math.log2(target)))))


def default_search_params(factory: str) -> dict[str, int]:
    """nprobe for IVF indices (1/16 of the lists), efSearch for HNSW, nothing otherwise."""
    if "IVF" in factory:
        nlist = _parse_nlist(factory)
        return {"nprobe": max(8, nlist // 16)}
    if "HNSW" in factory:
        return {"efSearch": DEFAULT_EF_SEARCH}
    return {}


def choose_index_spec(n: int, factory: str | None = None) -> IndexSpec:
    """Pick the index type for n products, or take the caller's factory string.

    >>> choose_index_spec(1_000).factory, choose_index_spec(1_000_000).factory
    ('Flat', 'IVF4096,Flat')
    """
    if factory is not None:
        factory = factory.strip()
        if not factory or "IDMap" in factory:
            raise IndexTypeError(
                f"invalid index type {factory!r}: give a FAISS factory string such as "
                "'Flat', 'IVF4096,Flat' or 'HNSW32,Flat' (the indexer adds its own id map)"
            )
        return IndexSpec(factory, default_search_params(factory))
    if n <= EXACT_MAX:
        return IndexSpec("Flat")
    chosen = f"IVF{ivf_nlist(n)},Flat"
    return IndexSpec(chosen, default_search_params(chosen))


def check_spec(spec: IndexSpec, dim: int, n: int) -> None:
    """Raise IndexTypeError now, before hours of encoding, if spec cannot index n vectors."""
    try:
        faiss.index_factory(dim, spec.factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise IndexTypeError(f"invalid index type {spec.factory!r}: {_first_line(exc)}") from exc
    needed = _parse_nlist(spec.factory) if "IVF" in spec.factory else 0
    if n < needed:
        raise IndexTypeError(
            f"index type {spec.factory!r} needs at least {needed} products to train, the "
            f"catalogue has {n}; use 'Flat' or fewer inverted lists"
        )


def _parse_nlist(factory: str) -> int:
    for part in factory.split(","):
        if part.startswith("IVF"):
            digits = "".join(ch for ch in part[3:] if ch.isdigit())
            if digits:
                return int(digits)
    return 1


def create_index(spec: IndexSpec, vectors: np.ndarray, ids: np.ndarray) -> faiss.Index:
    """Build an id-mapped index of `spec`, trained (when needed) on and filled with `vectors`.

    vectors: (N, D) float32, L2-normalised; ids: (N,) int64.
    """
    dim = vectors.shape[1]
    try:
        inner = faiss.index_factory(dim, spec.factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise IndexTypeError(f"invalid index type {spec.factory!r}: {_first_line(exc)}") from exc
    index = inner if _has_native_ids(inner) else faiss.IndexIDMap2(inner)
    if not index.is_trained:
        _train(index, spec.factory, vectors)
    add_vectors(index, ids, vectors)
    return index


def _train(index: faiss.Index, factory: str, vectors: np.ndarray) -> None:
    needed = _parse_nlist(factory) if "IVF" in factory else 1
    if len(vectors) < needed:
        raise IndexTypeError(
            f"index type {factory!r} needs at least {needed} vectors to train, got "
            f"{len(vectors)}; use 'Flat' or fewer inverted lists"
        )
    sample = vectors
    limit = TRAIN_POINTS_PER_LIST * needed
    if len(vectors) > limit:
        rows = np.random.default_rng(SEED).choice(len(vectors), size=limit, replace=False)
        sample = vectors[np.sort(rows)]
    try:
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
    except RuntimeError as exc:
        raise IndexTypeError(f"cannot train {factory!r}: {_first_line(exc)}") from exc


def add_vectors(index: faiss.Index, ids: np.ndarray, vectors: np.ndarray) -> None:
    """Add vectors (N, D) float32 under ids (N,) int64."""
    if len(ids):
        index.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, np.int64)
        )


def _has_native_ids(index: faiss.Index) -> bool:
    return faiss.try_extract_index_ivf(index) is not None


def stored_ids(index: faiss.Index) -> np.ndarray:
    """(ntotal,) int64: the ids the index holds, in storage order."""
    if isinstance(index, faiss.IndexIDMap):
        return faiss.vector_to_array(index.id_map).astype(np.int64, copy=False)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None:
        raise IndexCorruptError(f"index of type {type(index).__name__} holds no product ids")
    invlists = ivf.invlists
    if invlists is None:
        raise IndexCorruptError("IVF index without inverted lists")
    parts = []
    for list_no in range(ivf.nlist):
        size = invlists.list_size(list_no)
        if size:
            pointer = invlists.get_ids(list_no)
            parts.append(faiss.rev_swig_ptr(pointer, size).astype(np.int64))
            invlists.release_ids(list_no, pointer)  # type: ignore[attr-defined]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def inner_index(index: faiss.Index) -> faiss.Index:
    """The index inside an IndexIDMap / IndexIDMap2 (or the index itself), downcast."""
    if isinstance(index, faiss.IndexIDMap):
        return faiss.downcast_index(index.index)
    return index


def remove_vectors(index: faiss.Index, spec: IndexSpec, ids: np.ndarray) -> faiss.Index:
    """Remove ids (M,) int64 from the index; returns the index to use from now on.

    Index types that cannot remove (HNSW) are rebuilt from their remaining vectors.
    """
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if len(ids) == 0:
        return index
    try:
        index.remove_ids(faiss.IDSelectorBatch(len(ids), faiss.swig_ptr(ids)))
        return index
    except RuntimeError:
        pass
    current = stored_ids(index)
    vectors = inner_index(index).reconstruct_n(0, index.ntotal)  # storage order, as ids
    keep = ~np.isin(current, ids)
    return create_index(spec, vectors[keep], current[keep])


def reconstruct(index: faiss.Index, ids: np.ndarray) -> np.ndarray:
    """(M, D) float32 stored vectors of ids (M,) int64 (exact for flat storage)."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if len(ids) == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    return index.reconstruct_batch(ids)


def enable_reconstruct(index: faiss.Index) -> None:
    """Give IVF indices the direct map that `reconstruct` needs (not saved; reader only)."""
    ivf = faiss.try_extract_index_ivf(inner_index(index))
    if ivf is not None:
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]


def search_parameters(
    index: faiss.Index, params: dict[str, int], selector: faiss.IDSelector | None = None
) -> faiss.SearchParameters:
    """SearchParameters of the right class for the inner index, with params and selector."""
    inner = inner_index(index)
    result: faiss.SearchParameters
    if faiss.try_extract_index_ivf(inner) is not None:
        ivf = faiss.SearchParametersIVF()
        ivf.nprobe = int(params.get("nprobe", 1))
        result = ivf
    elif isinstance(inner, faiss.IndexHNSW):
        hnsw = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # not in faiss's stubs
        hnsw.efSearch = int(params.get("efSearch", DEFAULT_EF_SEARCH))
        result = hnsw
    else:
        result = faiss.SearchParameters()
    if selector is not None:
        result.sel = selector
    return result


def apply_search_params(index: faiss.Index, params: dict[str, int]) -> None:
    """Set nprobe / efSearch on the index itself, for searches without SearchParameters."""
    space = faiss.ParameterSpace()
    for name, value in params.items():
        space.set_index_parameter(index, name, float(value))


def save_index(index: faiss.Index, path: Path) -> None:
    """Write the index as a CPU index (a GPU index is copied back first)."""
    cpu = faiss.index_gpu_to_cpu(index) if _is_gpu(index) else index
    try:
        faiss.write_index(cpu, str(path))
    except RuntimeError as exc:  # FAISS reports a failed write (full disk, ...) this way
        raise OSError(
            errno.EIO, f"FAISS could not write it: {_first_line(exc)}", str(path)
        ) from exc


def load_index(path: Path) -> faiss.Index:
    """Read a saved id-mapped index; raises IndexCorruptError naming the file."""
    if not path.is_file():
        raise IndexCorruptError(f"index file missing: {path}; rebuild with `index build`")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        raise IndexCorruptError(f"cannot read FAISS index {path}: {_first_line(exc)}") from exc
    if not isinstance(index, faiss.IndexIDMap2) and not _has_native_ids(index):
        raise IndexCorruptError(f"{path} is not an id-mapped index written by the indexer")
    return index


def _is_gpu(index: faiss.Index) -> bool:
    return "Gpu" in type(index).__name__ or "Gpu" in type(faiss.downcast_index(index)).__name__


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
