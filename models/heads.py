"""Projections from a tower's features into the joint embedding space."""

from __future__ import annotations

from torch import nn

from models.config import HeadConfig
from models.errors import ConfigError


def build_head(config: HeadConfig, in_dim: int, out_dim: int) -> nn.Module:
    """`linear`: one Linear layer (Deep CMPL). `mlp`: hidden Linear+ReLU+Dropout layers,
    then a final Linear (Siamese: 500 then 512; Correlational: 300, 200 then 50).
    With `input_norm`, a BatchNorm1d without affine parameters comes first."""
    norm: list[nn.Module] = [nn.BatchNorm1d(in_dim, affine=False)] if config.input_norm else []
    if config.kind == "linear":
        if config.hidden:
            raise ConfigError("a linear head takes no hidden layers; use kind = 'mlp'")
        return nn.Sequential(*norm, nn.Linear(in_dim, out_dim)) if norm else nn.Linear(in_dim, out_dim)
    if config.kind == "mlp":
        layers: list[nn.Module] = [*norm]
        width = in_dim
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(config.dropout)]
            width = hidden
        layers.append(nn.Linear(width, out_dim))
        return nn.Sequential(*layers)
    raise ConfigError(f"unknown head kind {config.kind!r}; choose 'linear' or 'mlp'")
