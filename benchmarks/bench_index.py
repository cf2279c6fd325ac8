"""Recall@k against exact search, and query latency, for the indexer's index types.

    python benchmarks/bench_index.py                 # 1,000,000 x 512-d (needs ~6 GB RAM)
    python benchmarks/bench_index.py --n 200000 --threads 2 --hnsw
    python benchmarks/bench_index.py --vectors embeddings.npy   # real (N, D) embeddings
    python benchmarks/bench_index.py --n 100000 --backend both --milvus-uri var/bench.db

Vectors are L2-normalised. Synthetic ones are by default clusters in a 64-d subspace
plus noise (learned embeddings have a low intrinsic dimension; see `synthetic`); with
`--uniform` they are uniformly random on the sphere, the worst case for any approximate
index. Queries come from the same distribution but are not in the index. Indices are
built with indexer.faiss_index exactly as `index build` builds them, so what is
measured is what ships. Latency is one query at a time on one thread, as the service
searches; batch q/s uses every thread. Prints one row per index type and setting.
`--backend milvus` (or `both`, side by side) measures the Milvus backend on the same
vectors and queries, unfiltered and filtered, beside FAISS `Flat` with the same filter:
benchmarks/milvus_bench.py.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import faiss
import numpy as np

from indexer.faiss_index import (
    IndexSpec,
    choose_index_spec,
    create_index,
    ivf_nlist,
    search_parameters,
)
from indexer.knn import faiss_threads

try:  # run as a script: benchmarks/ is on the path
    from milvus_bench import measure_faiss_filtered, measure_milvus, print_milvus_table
except ImportError:  # pragma: no cover - as a module from the repository root
    from benchmarks.milvus_bench import measure_faiss_filtered, measure_milvus, print_milvus_table

CHUNK = 100_000


@dataclass
class Row:
    name: str
    params: str
    build_s: float
    recall: float
    p50_ms: float
    p99_ms: float
    qps: float
    size_ratio: float


def synthetic(n: int, dim: int, seed: int, uniform: bool, latent: int = 64) -> np.ndarray:
    """(n, dim) float32 unit vectors, generated in chunks to bound peak memory.

    Default: learned embeddings have a low intrinsic dimension, so points are drawn from
    1,000 Gaussian clusters (spread 1.0 around N(0, 1) centres) in a `latent`-d subspace,
    embedded in dim-d, plus isotropic noise of 0.3 of the norm. The nearest neighbour of a
    query then has cosine ~0.6, about what a trained image-text model gives.
    """
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, latent)))
    basis = basis.astype(np.float32)
    centres = rng.standard_normal((1000, latent)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        noise = rng.standard_normal((size, dim)).astype(np.float32)
        if uniform:
            block = noise
        else:
            z = centres[rng.integers(0, len(centres), size)]
            z += rng.standard_normal((size, latent)).astype(np.float32)
            block = z @ basis.T
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            block += noise * (0.3 / np.sqrt(dim))
        out[start : start + size] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth)]))


def latency(index: faiss.Index, queries: np.ndarray, k: int, params) -> tuple[float, float, float]:
    """(p50 ms, p99 ms) of one query at a time on one thread, as the service searches,
    and queries/s of the whole batch on every thread."""
    times = []
    with faiss_threads(1):
        for row in queries[: min(300, len(queries))]:
            started = time.perf_counter()
            index.search(row[None, :], k, params=params)
            times.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    index.search(queries, k, params=params)
    qps = len(queries) / (time.perf_counter() - started)
    times.sort()
    return statistics.median(times), times[int(0.99 * (len(times) - 1))], qps


def serialized_ratio(index: faiss.Index, raw_bytes: int) -> float:
    return faiss.serialize_index(index).nbytes / raw_bytes


def sweep(spec: IndexSpec) -> list[dict[str, int]]:
    """Search settings to measure: the default, and a few around it."""
    if "IVF" in spec.factory:
        nlist = int("".join(c for c in spec.factory.split(",")[0] if c.isdigit()))
        values = sorted(
            {nlist // 64, nlist // 32, nlist // 16, nlist // 8, spec.search_params["nprobe"]}
        )
        return [{"nprobe": max(1, v)} for v in values]
    if "HNSW" in spec.factory:
        return [{"efSearch": v} for v in (32, 64, 128, 256)]
    return [{}]


def measure(
    spec: IndexSpec, data: np.ndarray, queries: np.ndarray, truth: np.ndarray, k: int
) -> list[Row]:
    started = time.perf_counter()
    index = create_index(spec, data, np.arange(len(data), dtype=np.int64))
    build_s = time.perf_counter() - started
    ratio = serialized_ratio(index, data.nbytes)
    rows = []
    for params in sweep(spec):
        search = search_parameters(index, params)
        _, found = index.search(queries, k, params=search)
        p50, p99, qps = latency(index, queries, k, search)
        label = ",".join(f"{key}={value}" for key, value in params.items()) or "exact"
        rows.append(
            Row(spec.factory, label, build_s, recall_at_k(found, truth), p50, p99, qps, ratio)
        )
    del index
    return rows


def print_table(rows: list[Row], n: int, dim: int, threads: int, kind: str) -> None:
    print(
        f"\n{n:,} x {dim}-d {kind} vectors, {threads} thread(s), recall@10 against exact search\n"
    )
    header = f"{'index type':<16} {'search':<14} {'build s':>8} {'recall@10':>9} {'p50 ms':>8} {'p99 ms':>8} {'batch q/s':>10} {'size/raw':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.name:<16} {r.params:<14} {r.build_s:>8.1f} {r.recall:>9.3f} {r.p50_ms:>8.2f} "
            f"{r.p99_ms:>8.2f} {r.qps:>10.0f} {r.size_ratio:>8.2f}"
        )


def load_or_make(args: argparse.Namespace) -> np.ndarray:
    """(n + queries, dim) unit vectors: a shuffled sample of --vectors, or synthetic ones."""
    if not args.vectors:
        return synthetic(args.n + args.queries, args.dim, args.seed, args.uniform)
    vectors = np.load(args.vectors, mmap_mode="r")
    rows = np.random.default_rng(args.seed).permutation(len(vectors))[: args.n + args.queries]
    data = np.ascontiguousarray(vectors[np.sort(rows)], dtype=np.float32)
    np.random.default_rng(args.seed + 1).shuffle(data)
    faiss.normalize_L2(data)
    return data


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--n", type=int, default=1_000_000, help="indexed vectors (default 1,000,000)"
    )
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="FAISS threads (default: all cores)")
    parser.add_argument(
        "--uniform", action="store_true", help="uniform random vectors (worst case)"
    )
    parser.add_argument(
        "--vectors", help="an .npy file of (N, D) float32 embeddings to use instead of synthetic"
    )
    parser.add_argument("--hnsw", action="store_true", help="also HNSW32,Flat (slow to build)")
    parser.add_argument("--types", nargs="*", help="extra factory strings to measure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--backend", choices=("faiss", "milvus", "both"), default="faiss", help="what to measure"
    )
    parser.add_argument(
        "--milvus-uri",
        default="var/bench-milvus.db",
        help="Milvus: a .db file or http://host:19530",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    threads = faiss.omp_get_max_threads()
    data = load_or_make(args)
    queries, data = data[: args.queries].copy(), data[args.queries :]
    args.n, args.dim = data.shape
    specs = [IndexSpec("Flat")]
    chosen = choose_index_spec(args.n)
    ivf = (
        chosen
        if chosen.factory != "Flat"
        else choose_index_spec(args.n, f"IVF{ivf_nlist(args.n)},Flat")
    )
    specs.append(ivf)
    if args.hnsw:
        specs.append(choose_index_spec(args.n, "HNSW32,Flat"))
    specs += [choose_index_spec(args.n, factory) for factory in args.types or []]
    exact = create_index(IndexSpec("Flat"), data, np.arange(len(data), dtype=np.int64))
    _, truth = exact.search(queries, args.k)
    del exact
    kind = args.vectors or ("uniform" if args.uniform else "low-rank clustered")
    if args.backend != "faiss":
        started = time.perf_counter()
        milvus_rows = measure_milvus(data, queries, args.k, args.milvus_uri)
        milvus_rows += measure_faiss_filtered(data, queries, args.k)
        print_milvus_table(milvus_rows, args.milvus_uri)
        print(f"({time.perf_counter() - started:.0f} s in all)")
        if args.backend == "milvus":
            return
    rows = []
    for spec in specs:
        rows += measure(spec, data, queries, truth, args.k)
    print_table(rows, args.n, args.dim, threads, kind)
    print(
        f"\nthe indexer chooses {chosen.factory} {chosen.search_params or ''} for {args.n:,} products"
    )


if __name__ == "__main__":
    main()
