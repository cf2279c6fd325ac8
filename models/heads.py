"""Projections from a tower's features into the joint embedding space."""

from __future__ import annotations

from torch import nn

from models.config import HeadConfig
from models.errors import ConfigError


def build_head(config: HeadConfig, in_dim: int, out_dim: int) -> nn.Module:
    """`linear`: one Linear layer (Deep CMPL). `mlp`: hidden Linear+ReLU+Dropout layers,
    then a final Linear (Siamese: 500 then 512; Correlational: 300, 200 then 50).
    `input_norm` / `output_norm` put a BatchNorm1d without affine before / after."""
    if config.kind == "linear":
        if config.hidden:
            raise ConfigError("a linear head takes no hidden layers; use kind = 'mlp'")
        layers: list[nn.Module] = [nn.Linear(in_dim, out_dim)]
    elif config.kind == "mlp":
        layers = []
        width = in_dim
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(config.dropout)]
            width = hidden
        layers.append(nn.Linear(width, out_dim))
    else:
        raise ConfigError(f"unknown head kind {config.kind!r}; choose 'linear' or 'mlp'")
    if config.input_norm:
        layers.insert(0, nn.BatchNorm1d(in_dim, affine=False))
    if config.output_norm:
        layers.append(nn.BatchNorm1d(out_dim, affine=False))
    # A bare Linear keeps the weight names of linear-head artifacts (image_head.weight).
    return layers[0] if config.kind == "linear" and len(layers) == 1 else nn.Sequential(*layers)
