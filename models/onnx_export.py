"""Export a model's two towers to ONNX, for the ONNX Runtime CPU encoder.

The graphs are cached next to the artifact, in `ARTIFACT/onnx/<model id>/` (or, when
the artifact's folder is read-only, in the user's cache folder): `image.onnx`,
`text.onnx` or `text-int8.onnx`, and `export.json` saying which and why. Each graph
ends with the L2 normalisation, so it returns what `JointModel.encode_*` returns.

Both towers are float32 unless asked otherwise: ONNX Runtime's float32 graphs are
already several times faster than PyTorch on the CPU for the image tower. With
`int8=True` the text tower is also quantised (dynamic, per-channel weights; the
feed-forward output layers and the projection stay float, as quantising them moved
embeddings most) and that graph is kept only when its embeddings of every probe text
stay within cosine `INT8_MIN_COSINE` of PyTorch's. It is not the default because it
failed that bar on the development catalogue: the bundled model's int8 text tower gave
a minimum cosine of 0.9928 over its 3,032 test titles and category values and 0.9851
over 5,000 of its titles and attribute values (0.9958 on the sample's titles), and moved
category P@1 by up to 0.015 (benchmarks/bench_scan.py --compare-torch). The image tower is never quantised:
dynamic int8 convolutions are slower in ONNX Runtime.

This module imports no PyTorch: the CPU encoder reads the cache and export.json with it
in a process that never loads PyTorch; the tracing itself is models.onnx_trace.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.errors import ModelsError

if TYPE_CHECKING:
    from models.joint import JointModel

logger = logging.getLogger(__name__)

ONNX_DIR = "onnx"
EXPORT_INFO = "export.json"
IMAGE_GRAPH, TEXT_GRAPH, TEXT_INT8_GRAPH = "image.onnx", "text.onnx", "text-int8.onnx"
OPSET = 17
INT8_MIN_COSINE = 0.995
FORMAT_VERSION = 1
# Probe texts for the int8 check: catalogue titles and shopper queries of every kind.
PROBE_TEXTS = (
    "Puma Men Ferrari Black Fleece Jacket",
    "Nike Men Black Running Shoes",
    "Lavie Women Red Handbag",
    "Titan Women Silver Watch",
    "Fabindia Women Cotton Kurta",
    "Jockey Men Navy Blue Briefs",
    "Fastrack Unisex Black Sunglasses",
    "Catwalk Women Gold Toned Heels",
    "Wrangler Men Blue Skinny Fit Jeans",
    "United Colors of Benetton Men Striped Polo T-shirt",
    "Baggit Women Brown Wallet",
    "Lakme Absolute Lip Gloss",
    "Gini and Jony Girls Pink Printed Dress",
    "Reebok Women White Sports Sandals",
    "ADIDAS Men Grey Track Pants",
    "Ethnic Silk Saree with Zari Border",
    "navy blue checked shirt for men",
    "red dress",
    "black leather belt",
    "white sneakers for women",
    "kids cartoon t-shirt",
    "summer floral skirt",
    "formal shoes brown",
    "gold earrings",
    "mens sports watch with steel strap",
    "denim jacket",
    "Tshirts",
    "Navy Blue",
    "Footwear",
    "Topwear",
    "Casual Shoes",
    "Perfume and Body Mist",
)


@dataclass(frozen=True)
class ExportInfo:
    """What export.json records."""

    format_version: int
    model_id: str
    opset: int
    text: str  # "int8" or "float32"
    image: str  # "float32"
    text_int8_min_cosine: float | None  # on the probe texts; None when not tried
    probe_texts: int
    torch: str
    onnxruntime: str

    @property
    def text_graph(self) -> str:
        return TEXT_INT8_GRAPH if self.text == "int8" else TEXT_GRAPH


def cache_dir_for(artifact_dir: Path, model_id: str) -> Path:
    """Where the graphs of a model live: next to the artifact when that folder is
    writable (or already holds them), else in the user's cache folder."""
    beside = artifact_dir / ONNX_DIR / model_id
    if (beside / EXPORT_INFO).is_file() or _writable(artifact_dir):
        return beside
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "fashion-retrieval" / ONNX_DIR / model_id


def _writable(directory: Path) -> bool:
    target = directory / ONNX_DIR if (directory / ONNX_DIR).is_dir() else directory
    return os.access(target, os.W_OK)


def read_export(directory: Path, model_id: str) -> ExportInfo | None:
    """The export in `directory` when it is complete and of this model, else None."""
    try:
        info = ExportInfo(**json.loads((directory / EXPORT_INFO).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    complete = (directory / IMAGE_GRAPH).is_file() and (directory / info.text_graph).is_file()
    ok = info.model_id == model_id and info.format_version == FORMAT_VERSION
    return info if ok and complete else None


def export_onnx(
    model: JointModel,
    directory: Path,
    *,
    probe_texts: Sequence[str] = PROBE_TEXTS,
    int8: bool = False,
) -> ExportInfo:
    """Write the model's graphs into `directory` (replaced whole once complete)."""
    import onnxruntime  # the caller has checked it is installed

    from models.onnx_trace import export_graphs, torch_version

    model = model.cpu().eval()
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.with_name(f".{directory.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        export_graphs(model, staging)
        cosine = _try_int8(model, staging, probe_texts) if int8 else None
        use_int8 = cosine is not None and cosine >= INT8_MIN_COSINE
        if cosine is not None and not use_int8:
            (staging / TEXT_INT8_GRAPH).unlink()
        info = ExportInfo(
            FORMAT_VERSION,
            model.model_id,
            OPSET,
            "int8" if use_int8 else "float32",
            "float32",
            None if cosine is None else round(cosine, 6),
            len(probe_texts),
            torch_version(),
            onnxruntime.__version__,
        )
        (staging / EXPORT_INFO).write_text(json.dumps(asdict(info), indent=2) + "\n", "utf-8")
        shutil.rmtree(directory, ignore_errors=True)
        os.rename(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info(
        "exported %s to ONNX in %s (text tower %s%s)",
        model.model_id,
        directory,
        info.text,
        "" if cosine is None else f"; int8 min cosine {cosine:.4f} on {len(probe_texts)} probes",
    )
    return info


def _try_int8(model: JointModel, directory: Path, probe_texts: Sequence[str]) -> float | None:
    """Quantise the text graph; -> the lowest cosine to PyTorch over the probes, or None
    when quantisation is not available (no `onnx` package)."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        logger.info("the onnx package is not installed: the text tower stays float32")
        return None
    graph = onnx.load(str(directory / TEXT_GRAPH), load_external_data=False)
    feed_forward_out = [  # each layer's FFN output projection, not attention's
        node.name
        for node in graph.graph.node
        if node.name.endswith("output/dense/MatMul") and "attention" not in node.name
    ]
    head = [node.name for node in graph.graph.node if node.name.startswith("/text_head/")]
    keep_float = feed_forward_out + head
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))  # the quantiser logs a line per tensor to root
    try:
        quantize_dynamic(
            str(directory / TEXT_GRAPH),
            str(directory / TEXT_INT8_GRAPH),
            per_channel=True,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=keep_float,
        )
    finally:
        root.setLevel(level)
    from models.onnx_encoder import cpu_session  # one session factory for both

    session = cpu_session(directory / TEXT_INT8_GRAPH, threads=0)
    feeds = model.tokenizer(list(probe_texts))
    quantised = session.run(None, feeds)[0]
    reference = model.encode_texts(list(probe_texts))
    return float(np.min(np.sum(quantised * reference, axis=1)))


def find_or_export(model: JointModel, artifact_dir: Path) -> tuple[Path, ExportInfo]:
    """The cached export of the model, made first when there is none."""
    directory = cache_dir_for(artifact_dir, model.model_id)
    info = read_export(directory, model.model_id)
    if info is not None:
        return directory, info
    if not directory.parent.is_dir() and not _writable(artifact_dir):
        logger.info("%s is read-only: caching the ONNX graphs in %s", artifact_dir, directory)
    try:
        return directory, export_onnx(model, directory)
    except OSError as exc:
        raise ModelsError(f"cannot write the ONNX graphs into {directory}: {exc}") from exc
