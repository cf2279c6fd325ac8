"""Choose the runtime that encodes queries and catalogue photos: `load_encoder`.

On the CPU, the towers exported to ONNX (models.onnx_export, on first use) run several
times faster than in PyTorch (the depthwise convolutions of EfficientNet above all).
"auto" runs them with OpenVINO when it is installed (its bfloat16 text tower is ~3x
faster again on CPUs with bfloat16 units; models.openvino_runtime), else with ONNX
Runtime; both come with `pip install "fashion-retrieval[onnx]"`. PyTorch stays the path
on CUDA, and is the fallback, with a log line, when neither is installed or a model
cannot be exported. PyTorch is imported only on those paths; graphs that are missing
are exported in a child process, so a CPU process that encodes with them never imports
it.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from models.artifact import device_type, load_model, read_artifact
from models.errors import ArtifactError, ModelsError

if TYPE_CHECKING:
    import torch

    from models.joint import JointModel
    from models.onnx_encoder import OnnxEncoder

logger = logging.getLogger(__name__)

Runtime = Literal["auto", "openvino", "onnx", "torch"]
RUNTIMES: tuple[Runtime, ...] = ("auto", "openvino", "onnx", "torch")
INSTALL_HINT = 'pip install "fashion-retrieval[onnx]"'


@runtime_checkable
class Encoder(Protocol):
    """What the indexer and the service need from a model: JointModel and OnnxEncoder
    have this shape, and tests pass small fakes with it."""

    @property
    def model_id(self) -> str:
        """A content hash naming the model; indices remember it."""
        ...

    @property
    def embed_dim(self) -> int: ...

    def encode_images(self, images: Sequence[Any], batch_size: int = ...) -> np.ndarray:
        """images: paths, bytes or PIL images -> (N, embed_dim) float32, L2-normalised."""
        ...

    def encode_texts(self, texts: Sequence[str], batch_size: int = ...) -> np.ndarray:
        """(N, embed_dim) float32, L2-normalised."""
        ...


def onnx_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def load_encoder(
    path: str | Path | None = None,
    device: str | torch.device = "auto",
    *,
    runtime: Runtime = "auto",
    threads: int = 0,
) -> JointModel | OnnxEncoder:
    """A ready encoder of the artifact at `path` (None: the bundled default model).

    runtime "auto": on the CPU, OpenVINO when installed, else ONNX Runtime, else
    PyTorch (logged); "openvino" / "onnx": that engine or a ModelsError; "torch":
    PyTorch. On CUDA it is PyTorch.
    threads: the engine's threads per call (0: one per core). The CPU encoder has
    JointModel's encode_* / preprocess / model_id / embed_dim / device.
    """
    if runtime not in RUNTIMES:
        raise ModelsError(f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
    if runtime == "torch":
        return load_model(path, device=device)
    if device_type(device) != "cpu":
        if runtime != "auto":
            logger.info("the model runs on CUDA: encoding with PyTorch there")
        return load_model(path, device=device)
    engine = _cpu_engine(runtime)
    if engine is None:
        return load_model(path, device=device)
    name = ENGINE_NAMES[engine]
    try:
        encoder = _onnx_encoder(path, threads, engine)
    except ArtifactError:
        raise  # a damaged artifact is an error whatever runs it
    except Exception as exc:  # any exporter or runtime failure: PyTorch still works
        if runtime != "auto":
            raise ModelsError(f"cannot run the model with {name}: {exc}") from exc
        logger.warning("cannot run the model with %s (%s): encoding with PyTorch", name, exc)
        return load_model(path, device=device)
    logger.info(
        "encoding with %s (text tower %s) from %s", name, encoder.text_precision, encoder.directory
    )
    return encoder


ENGINE_NAMES = {"openvino": "OpenVINO", "onnx": "ONNX Runtime"}


def _cpu_engine(runtime: Runtime) -> Literal["openvino", "onnx"] | None:
    """The engine that runs the exported graphs, or None for PyTorch (logged)."""
    if not onnx_available():  # the export and both engines' installs come with it
        if runtime != "auto":
            raise ModelsError(f"runtime {runtime!r} needs the [onnx] extra: {INSTALL_HINT}")
        logger.warning(
            "ONNX Runtime is not installed: encoding with PyTorch on the CPU (%s for the "
            "faster CPU encoder)",
            INSTALL_HINT,
        )
        return None
    if runtime == "onnx":
        return "onnx"
    if openvino_available():
        return "openvino"
    if runtime == "openvino":
        raise ModelsError(f"runtime 'openvino' needs OpenVINO: {INSTALL_HINT}")
    logger.info("OpenVINO is not installed: encoding with ONNX Runtime")
    return "onnx"


def _onnx_encoder(
    path: str | Path | None, threads: int, engine: Literal["openvino", "onnx"]
) -> OnnxEncoder:
    """The artifact's exported graphs, exported first when missing. When they exist the
    PyTorch weights are never loaded (a smaller process)."""
    from models.onnx_encoder import OnnxEncoder  # imports onnxruntime
    from models.onnx_export import cache_dir_for, read_export

    parts = read_artifact(path)
    directory = cache_dir_for(parts.directory, parts.model_id)
    info = read_export(directory, parts.model_id)
    if info is None:
        directory = _export_in_child(parts.directory)
        info = read_export(directory, parts.model_id)
        if info is None:
            raise ModelsError(f"the ONNX export left no graphs of {parts.model_id} in {directory}")
    return OnnxEncoder(parts, directory, info, threads=threads, runtime=engine)


def _export_in_child(artifact_dir: Path) -> Path:
    """Export the artifact's graphs in a child process and return their folder. Loading
    the weights and tracing them with PyTorch left a serving process 0.75 GB larger for
    its whole life (1.75 against 1.0 GB of RSS); a child gives it all back when it ends.
    The child's errors are raised here."""
    context = multiprocessing.get_context("spawn")  # no fork of a threaded server
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_export, artifact_dir).result()


def _export(artifact_dir: Path) -> Path:
    """In the child: load the artifact with PyTorch and export (or find) its graphs."""
    from models.onnx_export import find_or_export

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    directory, _ = find_or_export(load_model(artifact_dir, device="cpu"), artifact_dir)
    return directory
