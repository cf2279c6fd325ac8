"""What trains at which rate: parameter groups, frozen parts, the learning-rate schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

from models import JointModel
from training.config import TrainConfig


def param_groups(config: TrainConfig, model: JointModel, objective: nn.Module) -> list[dict]:
    """Pretrained towers learn at tower_lr; everything trained from scratch at lr."""
    groups = []
    for tower, tower_config in (
        (model.image_tower, config.model.image),
        (model.text_tower, config.model.text),
    ):
        pretrained = tower_config.pretrained and tower_config.name in (
            "efficientnet-lite0",
            "minilm",
        )
        groups.append(
            {
                "params": list(tower.parameters()),
                "lr": config.optim.tower_lr if pretrained else config.optim.lr,
            }
        )
    rest = [*model.image_head.parameters(), *model.text_head.parameters(), *objective.parameters()]
    groups.append({"params": rest, "lr": config.optim.lr})
    return groups


def apply_freezing(config: TrainConfig, model: JointModel, epoch: int) -> bool:
    """Freeze both towers during the first freeze_towers_epochs; always keep the image
    tower's first image_frozen_blocks frozen. Returns whether the towers are frozen."""
    frozen = epoch <= config.optim.freeze_towers_epochs
    for tower in (model.image_tower, model.text_tower):
        tower.requires_grad_(not frozen)
    blocks = config.optim.image_frozen_blocks
    if blocks:
        net = model.image_tower.net
        for module in (net._conv_stem, net._bn0, *net._blocks[:blocks]):
            module.requires_grad_(False)
    if config.optim.freeze_word_embeddings and config.model.text.name == "minilm":
        model.text_tower.bert.embeddings.word_embeddings.requires_grad_(False)
    return frozen


def build_scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = max(1, min(config.optim.warmup_steps, total_steps // 10))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.optim.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
