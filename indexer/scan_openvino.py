"""The pca scan's first pass run by OpenVINO: one compiled matrix product per target.

numpy's BLAS (OpenBLAS) multiplies a batch of 16 queries by 41k x 128 float32
coordinates in about 5 ms on one core of the development machine; OpenVINO's CPU
plugin does it in about 1.1 ms in bfloat16 (AMX) and 3.1 ms in float32. A whole pca
scan of 16 queries took 7.3 against 10.5 ms (`python benchmarks/bench_scan.py`, rows
pca and pca-np); for one query BLAS was faster (1.9 against 2.4 ms), so a single query
stays with numpy (indexer.scan). The first pass only picks a short list that is then
re-scored exactly in float32, so bfloat16's rounding can only cost recall, which
bench_scan measures. Used when OpenVINO is installed (the `onnx` extra, as the
service's encoder); numpy otherwise.
"""

from __future__ import annotations

import numpy as np


class OpenVinoProduct:
    """queries (Q, d) float32 -> (Q, N) float32 scores against a fixed (N, d) matrix."""

    def __init__(self, matrix: np.ndarray) -> None:
        import openvino as ov
        import openvino.opset13 as ops

        from models.openvino_runtime import OpenVinoGraph, has_bfloat16

        core = ov.Core()
        queries = ops.parameter([-1, matrix.shape[1]], np.float32, name="queries")
        product = ops.matmul(queries, ops.constant(matrix), False, True)
        self._graph = OpenVinoGraph(
            core,
            ov.Model([product], [queries]),
            threads=1,  # one search thread, as FAISS and BLAS here
            precision="bfloat16" if has_bfloat16(core) else "float32",
        )
        self.precision = self._graph.precision

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        return self._graph.run(None, {"queries": queries})[0]
