"""The CPU encoder: `JointModel`'s encode_* with the towers' exported ONNX graphs, run
by ONNX Runtime or by OpenVINO (models.openvino_runtime).

It uses the artifact's tokenizer and image preprocessing (the same code decides what
the towers see) and holds no PyTorch weights: built from `models.artifact.read_artifact`
once the graphs exist, the towers' weights are never loaded into PyTorch at all, and
PyTorch is not even imported (nothing here or in what it imports needs it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import onnxruntime as ort

from models.config import ModelConfig
from models.onnx_export import IMAGE_GRAPH, PROBE_TEXTS, TEXT_GRAPH, ExportInfo
from models.tokenizers import Tokenizer, length_sorted_batches
from models.transforms import ImageInput, ImageTransform


def cpu_session(path: Path, *, threads: int) -> ort.InferenceSession:
    """A CPU session; threads 0 = ONNX Runtime's default (one per core)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # No spinning between runs: in the service the cores are wanted by the HTTP loop,
    # decoding and search the moment a batch is encoded.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class ModelParts(Protocol):
    """A JointModel, or an artifact read without its weights (ArtifactParts)."""

    @property
    def model_id(self) -> str: ...

    @property
    def config(self) -> ModelConfig: ...

    @property
    def tokenizer(self) -> Tokenizer: ...

    @property
    def metrics(self) -> Any: ...

    @property
    def query_bank(self) -> list[str]: ...

    @property
    def photo_bank(self) -> np.ndarray | None: ...


class Graph(Protocol):
    """A loaded graph: an ONNX Runtime session, or models.openvino_runtime's."""

    def run(self, output_names: None, input_feed: dict[str, np.ndarray]) -> list[Any]: ...


class OnnxEncoder:
    """Encodes like `JointModel.encode_images` / `encode_texts`, on the CPU, with the
    exported graphs run by ONNX Runtime (runtime "onnx") or OpenVINO ("openvino")."""

    def __init__(
        self,
        model: ModelParts,
        directory: Path,
        info: ExportInfo,
        *,
        threads: int = 0,
        runtime: Literal["onnx", "openvino"] = "onnx",
    ) -> None:
        self.model_id: str = model.model_id
        self.config: ModelConfig = model.config
        self.metrics = model.metrics
        self.query_bank: list[str] = list(model.query_bank)
        self.photo_bank: np.ndarray | None = model.photo_bank
        self.tokenizer: Tokenizer = model.tokenizer
        self.transform = ImageTransform(model.config.preprocess)
        self.export = info
        self.directory = directory
        self.runtime = runtime
        self._text: Graph
        self._image: Graph
        self.text_precision: str = info.text
        if runtime == "openvino":
            self._text, self._image = self._openvino_graphs(directory, info, threads)
        else:
            self._text = cpu_session(directory / info.text_graph, threads=threads)
            self._image = cpu_session(directory / IMAGE_GRAPH, threads=threads)

    def _openvino_graphs(
        self, directory: Path, info: ExportInfo, threads: int
    ) -> tuple[Graph, Graph]:
        """(text, image) graphs: the image graph in OpenVINO, the text graph too when it
        passes the probes against ONNX Runtime's float32 graph (models.openvino_runtime),
        else ONNX Runtime's."""
        import openvino as ov

        from models.openvino_runtime import OpenVinoGraph, openvino_text_graph

        core = ov.Core()
        feeds = self.tokenizer(list(PROBE_TEXTS))
        # Only for the probes: a session holds its own copy of the weights.
        reference = cpu_session(directory / TEXT_GRAPH, threads=1).run(None, feeds)[0]
        fast = openvino_text_graph(
            core,
            directory / TEXT_GRAPH,  # float32: OpenVINO picks its own precision
            threads=threads,
            probe_feeds=feeds,
            reference=reference,
        )
        text: Graph
        if fast is None:
            text = cpu_session(directory / info.text_graph, threads=threads)
            self.text_precision = f"{info.text}, run by ONNX Runtime"
        else:
            text, self.text_precision = fast, fast.precision
        image = OpenVinoGraph(core, directory / IMAGE_GRAPH, threads=threads, precision="float32")
        return text, image

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    @property
    def device(self) -> str:
        """Where it encodes, for logs and reports ("cpu"; JointModel's is a
        torch.device, which would import PyTorch)."""
        return "cpu"

    def preprocess(self, image: ImageInput) -> np.ndarray:
        """A photo -> the (3, H, W) float32 array `encode_images` takes as it is."""
        return self.transform.prepare(image)

    def encode_images(self, images: Sequence[ImageInput], batch_size: int = 64) -> np.ndarray:
        """Photos (paths, bytes, PIL images or `preprocess` arrays) -> (N, embed_dim)
        float32, L2-normalised. Raises ImageDecodeError for an undecodable one."""
        chunks = [np.zeros((0, self.embed_dim), dtype=np.float32)]
        for start in range(0, len(images), batch_size):
            pixels = self.transform.prepare_batch(images[start : start + batch_size])
            chunks.append(self._image.run(None, {"pixels": pixels})[0])
        return np.concatenate(chunks).astype(np.float32, copy=False)

    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Titles or queries -> (N, embed_dim) float32, L2-normalised."""
        out = np.zeros((len(texts), self.embed_dim), dtype=np.float32)
        for rows, tokens in length_sorted_batches(self.tokenizer, texts, batch_size):
            feeds = {name: np.ascontiguousarray(ids) for name, ids in tokens.items()}
            out[rows] = self._text.run(None, feeds)[0]
        return out
