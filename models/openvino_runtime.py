"""OpenVINO runs the exported ONNX graphs on the CPU (runtime "openvino").

Same graphs as ONNX Runtime (models.onnx_export), another engine. What it adds is
bfloat16 on CPUs that have it (AMX or AVX512-BF16, as on Sapphire Rapids): the MiniLM
text tower in bfloat16 encoded 16 distinct KAGL titles in 24 ms against ONNX Runtime's
53 ms in float32 on one core of the development machine (a single query gains less:
7.2 against 8.1 ms), with embeddings within cosine 0.99994 of float32 over 2,000 KAGL
titles. The
text tower runs in bfloat16 only when every probe text embeds within `TEXT_MIN_COSINE`
of ONNX Runtime's float32 graph (checked at load, on a padded batch of probes; a graph
that fails in float32 too, as a Bi-LSTM's packed sequences can, stays with ONNX
Runtime); the image tower always runs in float32, as in bfloat16 the photos'
embeddings moved to cosine 0.966.

A service's small batches of text have their token lengths padded to a multiple of 8
(`TEXT_PADDING`): OpenVINO plans a dynamic-shape graph per input shape, and fewer
shapes were 5-35% faster per call for batches of 3 to 16 titles, despite the padded
tokens. Batches of 32, and an index build's length-sorted batches, gained nothing or
lost, so batches of more than 16 keep their length (benchmarks/bench_text_shapes.py,
results/bench_text_shapes.txt).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import openvino as ov

from models.onnx_export import INT8_MIN_COSINE

logger = logging.getLogger(__name__)

Precision = Literal["float32", "bfloat16"]
TEXT_MIN_COSINE = INT8_MIN_COSINE  # the bar the int8 ONNX text tower must pass
_HINTS: dict[Precision, str] = {"float32": "f32", "bfloat16": "bf16"}
Feeds = dict[str, np.ndarray]
Padding = Callable[[Feeds], Feeds]
LENGTH_STEP = 8  # token lengths are padded to a multiple of this
PAD_ROWS_UP_TO = 16  # batches up to this many texts have their lengths padded


def pad_length(feeds: Feeds) -> Feeds:
    """Token feeds (B, L) padded with zeros (the pad id, a zero attention mask: the towers
    ignore them) to (B, L rounded up to LENGTH_STEP)."""
    extra_columns = -next(iter(feeds.values())).shape[1] % LENGTH_STEP
    if not extra_columns:
        return feeds
    return {name: np.pad(tokens, ((0, 0), (0, extra_columns))) for name, tokens in feeds.items()}


def pad_small_batches(feeds: Feeds) -> Feeds:
    """`pad_length` for batches of up to PAD_ROWS_UP_TO texts (a service's); larger ones,
    such as an index build's length-sorted batches, pay more for the padded tokens than
    the reused plans save."""
    if len(next(iter(feeds.values()))) > PAD_ROWS_UP_TO:
        return feeds
    return pad_length(feeds)


TEXT_PADDING: Padding = pad_small_batches


class OpenVinoGraph:
    """One compiled graph with ONNX Runtime's `run(None, feeds)` call shape: an exported
    ONNX file, or a model built in memory (indexer.scan_openvino's matrix product)."""

    def __init__(
        self,
        core: ov.Core,
        graph: Path | ov.Model,
        *,
        threads: int,
        precision: Precision,
        pad: Padding | None = None,
    ) -> None:
        """pad: pads each call's feeds (the same rows) to a shape OpenVINO may have
        planned before (text graphs: TEXT_PADDING)."""
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": _HINTS[precision],  # bf16 is the default on AMX
            "PERFORMANCE_HINT": "LATENCY",
            # Not pinned: the cores are shared with the event loop, decoding and search.
            "ENABLE_CPU_PINNING": False,
        }
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        self.precision = precision
        self.pad = pad
        source = str(graph) if isinstance(graph, Path) else graph
        self._request = core.compile_model(source, "CPU", config).create_infer_request()
        self._lock = threading.Lock()  # one request: callers take turns

    def run(self, _outputs: None, feeds: Feeds) -> list[np.ndarray]:
        if self.pad is not None:
            feeds = self.pad(feeds)
        with self._lock:
            result = self._request.infer(feeds)
            return [np.array(result[0], dtype=np.float32)]  # a copy: the buffer is reused


def has_bfloat16(core: ov.Core) -> bool:
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def openvino_text_graph(
    core: ov.Core,
    path: Path,
    *,
    threads: int,
    probe_feeds: dict[str, np.ndarray],
    reference: np.ndarray,
) -> OpenVinoGraph | None:
    """The text graph in bfloat16 when the CPU has it, else float32, whichever first
    embeds every probe within TEXT_MIN_COSINE of `reference` (ONNX Runtime's float32
    embeddings of the probes); None when neither does (ONNX Runtime then runs it)."""
    precisions: tuple[Precision, ...] = ("float32",)
    if has_bfloat16(core):
        precisions = ("bfloat16", "float32")
    for precision in precisions:
        graph = OpenVinoGraph(core, path, threads=threads, precision=precision, pad=TEXT_PADDING)
        cosine = float(np.min(np.sum(graph.run(None, probe_feeds)[0] * reference, axis=1)))
        if cosine >= TEXT_MIN_COSINE:
            logger.info("OpenVINO text tower in %s (min probe cosine %.5f)", precision, cosine)
            return graph
        logger.warning(
            "OpenVINO's %s text tower moved a probe to cosine %.4f of ONNX Runtime's "
            "float32 (< %.3f)",
            precision,
            cosine,
            TEXT_MIN_COSINE,
        )
    return None
