"""What trains at which rate: parameter groups, frozen parts, the learning-rate schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

from models import JointModel
from training.config import TrainConfig


def param_groups(config: TrainConfig, model: JointModel, objective: nn.Module) -> list[dict]:
    """Towers that start from pretrained weights learn at tower_lr; everything trained
    from scratch (towers, heads, the objective's own parameters) at lr."""
    groups = [
        {
            "params": list(tower.parameters()),
            "lr": config.optim.tower_lr if tower.is_pretrained else config.optim.lr,
        }
        for tower in (model.image_tower, model.text_tower)
    ]
    rest = [*model.image_head.parameters(), *model.text_head.parameters(), *objective.parameters()]
    groups.append({"params": rest, "lr": config.optim.lr})
    return groups


def apply_freezing(config: TrainConfig, model: JointModel, epoch: int) -> bool:
    """Freeze both towers during the first freeze_towers_epochs; always keep the image
    tower's first image_frozen_blocks (and, when asked, the text tower's word
    embeddings) frozen; with freeze_text, the whole text side (tower and projection).
    Returns whether the towers are frozen."""
    frozen = epoch <= config.optim.freeze_towers_epochs
    for tower in (model.image_tower, model.text_tower):
        tower.requires_grad_(not frozen)
    model.image_tower.freeze_prefix(config.optim.image_frozen_blocks)
    if config.optim.freeze_word_embeddings:
        model.text_tower.freeze_word_embeddings()
    if config.optim.freeze_text:
        model.text_tower.requires_grad_(False)
        model.text_head.requires_grad_(False)
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
