"""Weight averaging ("model soups", Wortsman et al., ICML 2022): models fine-tuned from
one start, with other seeds or settings, often score better as the average of their
weights than any of them alone, at no cost per query.

Only models of one architecture and one start average well: the artifacts must agree
on everything but their weights (config, vocabulary); averaging unrelated models gives
a model that matches nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from models import ArtifactError, JointModel, load_model
from models.artifact import VOCAB

WEIGHT_SUM_TOLERANCE = 1e-6


def average_state_dicts(
    states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]
) -> dict[str, torch.Tensor]:
    """The weighted sum of state dicts, in each tensor's own dtype.

    Floating tensors are summed in float64; integer buffers (BatchNorm's batch counters)
    are the first state's. `weights` must sum to 1 (a negative weight extrapolates).
    Raises ValueError when the states differ in keys or shapes.
    """
    if not states or len(states) != len(weights):
        raise ValueError(f"{len(states)} state dicts and {len(weights)} weights")
    if not math.isclose(sum(weights), 1.0, abs_tol=WEIGHT_SUM_TOLERANCE):
        raise ValueError(f"the weights must sum to 1, not {sum(weights):g}")
    first = states[0]
    for number, state in enumerate(states[1:], start=2):
        if state.keys() != first.keys():
            missing = sorted(first.keys() ^ state.keys())[:3]
            raise ValueError(f"model {number} has other weights than model 1: {missing}")
        for key, tensor in state.items():
            if tensor.shape != first[key].shape:
                raise ValueError(
                    f"model {number}'s {key} is {tuple(tensor.shape)}, "
                    f"model 1's {tuple(first[key].shape)}"
                )
    averaged: dict[str, torch.Tensor] = {}
    for key, tensor in first.items():
        if not tensor.is_floating_point():
            averaged[key] = tensor.clone()
            continue
        total = sum(w * s[key].double() for w, s in zip(weights, states, strict=True))
        averaged[key] = torch.as_tensor(total).to(tensor.dtype)
    return averaged


def average_models(paths: Sequence[Path], weights: Sequence[float] | None = None) -> JointModel:
    """The artifacts at `paths` averaged (equal weights by default) into a model with the
    first's config, tokenizer and query bank, and no photo bank (its photos would be
    encoded by another model; the caller encodes a new one).

    Mirror averaging and `image_scales` are how photos are encoded, not weights: the
    first artifact's are kept. Raises ArtifactError when the artifacts differ in anything
    else but their weights.
    """
    if len(paths) < 2:
        raise ValueError(f"averaging needs at least two models, got {len(paths)}")
    weights = list(weights) if weights is not None else [1 / len(paths)] * len(paths)
    models = [load_model(path, device="cpu") for path in paths]
    base = models[0]
    for path, model in zip(paths[1:], models[1:], strict=True):
        if model.config.encoding_like(base.config) != base.config:
            raise ArtifactError(
                f"{path} and {paths[0]} differ in their model config: only fine-tunes of "
                "one architecture can be averaged"
            )
        if _vocabulary(path) != _vocabulary(paths[0]):
            raise ArtifactError(f"{path} and {paths[0]} have different word vocabularies")
    averaged: dict[str, object] = {
        "averaged": [
            {"model": m.model_id, "path": str(p), "weight": w}
            for m, p, w in zip(models, paths, weights, strict=True)
        ]
    }
    if "split" in base.metrics:
        averaged["split"] = base.metrics["split"]
    base.load_state_dict(average_state_dicts([m.state_dict() for m in models], weights))
    base.model_id = "untrained"  # save_artifact gives the averaged weights their own id
    base.metrics = averaged
    base.photo_bank = None
    return base


def _vocabulary(path: Path) -> bytes | None:
    vocab = path / VOCAB
    return vocab.read_bytes() if vocab.is_file() else None
