"""The PyTorch half of the ONNX export: trace a JointModel's two towers into graphs.

Kept apart from models.onnx_export (the cache, export.json, the int8 check), which the
CPU encoder and the service import without PyTorch; this module is imported only when
graphs are actually exported.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.joint import JointModel
from models.onnx_export import IMAGE_GRAPH, OPSET, TEXT_GRAPH


class _TextGraph(nn.Module):
    def __init__(self, model: JointModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        tokens = {"input_ids": input_ids, "attention_mask": attention_mask}
        return F.normalize(self.model.embed_texts(tokens).float(), dim=-1)


class _ImageGraph(nn.Module):
    def __init__(self, model: JointModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.embed_images(pixels).float(), dim=-1)


def torch_version() -> str:
    return torch.__version__


def export_graphs(model: JointModel, directory: Path) -> None:
    """Write TEXT_GRAPH and IMAGE_GRAPH of a CPU model into `directory`."""
    tokens = model.tokenize(["navy blue checked shirt for men", "red dress"])
    config = model.config.preprocess
    pixels = torch.zeros((2, 3, config.height, config.width))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's tracer warnings are noise here
        torch.onnx.export(
            _TextGraph(model),
            (tokens["input_ids"], tokens["attention_mask"]),
            str(directory / TEXT_GRAPH),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "embedding": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
        torch.onnx.export(
            _ImageGraph(model),
            (pixels,),
            str(directory / IMAGE_GRAPH),
            input_names=["pixels"],
            output_names=["embedding"],
            dynamic_axes={"pixels": {0: "batch"}, "embedding": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
