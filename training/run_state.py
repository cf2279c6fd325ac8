"""What a training run carries from step to step, and its round trip through
checkpoint.pt (--resume)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from models import ConfigError, JointModel
from training.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from training.config import TrainConfig, parse_config

logger = logging.getLogger(__name__)


@dataclass
class TrainState:
    model: JointModel
    objective: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
    pending_scheduler_state: dict | None = None  # restored once the step count is known
    epoch: int = 0  # epochs completed
    step: int = 0  # batches of epoch + 1 already trained (a mid-epoch checkpoint)
    partial_loss: tuple[float, int] = (0.0, 0)  # loss sum and batches of those steps
    best_score: float = float("-inf")


def _without_epochs(config: dict) -> dict:
    """Resuming may extend a run, so the epoch count alone may differ."""
    return {**config, "optim": {k: v for k, v in config["optim"].items() if k != "epochs"}}


def _with_todays_defaults(saved: dict) -> dict:
    """A checkpoint's config with the options added since it was written at their
    defaults, which train as before: a new option does not strand a run."""
    try:
        return parse_config(dict(saved), str(saved.get("name", "checkpoint"))).to_dict()
    except ConfigError:  # an option since removed or renamed: compared as it is, and refused
        return saved


def restore_state(state: TrainState, path: Path, config: TrainConfig) -> None:
    """Load `path` into `state` (--resume); refuses a checkpoint of another config."""
    saved = load_checkpoint(path)
    if _without_epochs(_with_todays_defaults(saved["config"])) != _without_epochs(config.to_dict()):
        raise ValueError(
            f"{path} was written by another training config; use a new --out or drop --resume"
        )
    state.model.load_state_dict(saved["model"])
    state.objective.load_state_dict(saved["objective"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.pending_scheduler_state = saved.get("scheduler")
    state.epoch, state.best_score = saved["epoch"], saved["best_score"]
    state.step = saved.get("step", 0)
    state.partial_loss = tuple(saved.get("partial_loss", (0.0, 0)))
    logger.info(
        "resuming after epoch %d, step %d (best val score %.4f)",
        state.epoch,
        state.step,
        state.best_score,
    )


def save_state(config: TrainConfig, state: TrainState, out: Path) -> None:
    """Write `state` to OUT/checkpoint.pt, atomically."""
    save_checkpoint(
        out / CHECKPOINT,
        {
            "config": config.to_dict(),
            "model": state.model.state_dict(),
            "objective": state.objective.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict() if state.scheduler is not None else None,
            "epoch": state.epoch,
            "step": state.step,
            "partial_loss": state.partial_loss,
            "best_score": state.best_score,
        },
    )
    if state.step:
        logger.info("checkpoint: epoch %d, step %d", state.epoch + 1, state.step)
