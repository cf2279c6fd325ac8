"""Training objectives: what each scheme optimises, given one forward pass.

An objective is an nn.Module so that its own parameters (CMPC's identity weights,
the Correlational network's decoders) are trained and checkpointed with the model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from training.config import TrainConfig
from training.losses import CMPCClassifier, cmpm_loss

Outputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class CMPLObjective(nn.Module):
    """Deep CMPL: CMPM, plus CMPC when the config asks for it."""

    def __init__(self, config: TrainConfig, num_identities: int) -> None:
        super().__init__()
        self.use_cmpm = config.loss.cmpm
        self.scale = config.loss.scale
        self.cmpc = CMPCClassifier(config.model.embed_dim, num_identities) if config.loss.cmpc else None

    def forward(self, outputs: Outputs, labels: torch.Tensor) -> torch.Tensor:
        _, _, image_emb, text_emb = outputs
        loss = image_emb.new_zeros(())
        if self.use_cmpm:
            loss = loss + cmpm_loss(image_emb.float(), text_emb.float(), labels, scale=self.scale)
        if self.cmpc is not None:
            loss = loss + self.cmpc(image_emb.float(), text_emb.float(), labels)
        return loss


ObjectiveFactory = Callable[[TrainConfig, int, int, int], nn.Module]

# scheme -> factory(config, num_identities, image_feature_dim, text_feature_dim)
OBJECTIVES: dict[str, ObjectiveFactory] = {
    "cmpl": lambda config, identities, image_dim, text_dim: CMPLObjective(config, identities),
}


def build_objective(config: TrainConfig, num_identities: int, image_dim: int, text_dim: int) -> nn.Module:
    if config.scheme not in OBJECTIVES:
        raise ValueError(f"no objective for scheme {config.scheme!r}; known: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[config.scheme](config, num_identities, image_dim, text_dim)
