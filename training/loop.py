"""The training loop: seeded, resumable, data-parallel under torchrun, AMP on CUDA."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from models import JointModel, build_model, read_catalog, save_artifact
from models.artifact import resolve_device
from training.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from training.config import TrainConfig
from training.data import (
    IdentityBatchSampler,
    PairDataset,
    Splits,
    collate_pairs,
    identity_labels,
    split_products,
)
from training.distributed import DistInfo, barrier, cleanup, init_distributed
from training.evaluate import evaluate_seed
from training.objectives import build_objective
from training.optim import apply_freezing, build_scheduler, param_groups
from training.prefix_cache import CachedPairDataset, compute_prefix_cache

logger = logging.getLogger(__name__)
MODEL_DIR = "model"
LOG_FILE = "train_log.jsonl"


@dataclass
class TrainState:
    model: JointModel
    objective: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
    pending_scheduler_state: dict | None = None  # restored once the step count is known
    epoch: int = 0  # epochs completed
    best_score: float = float("-inf")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _score(val: dict[str, dict[str, float]]) -> float:
    """Model selection: R@1 + R@10 of both directions on the val gallery."""
    return sum(val[d]["R@1"] + val[d]["R@10"] for d in ("text_to_image", "image_to_text"))


def _prepare(
    config: TrainConfig, catalog_path: Path, device: torch.device
) -> tuple[Splits, list[int], JointModel, nn.Module]:
    catalog = read_catalog(catalog_path)
    logger.info(catalog.summary())
    splits = split_products(
        catalog.products,
        seed=config.data.split_seed,
        val_fraction=config.data.val_fraction,
        test_fraction=config.data.test_fraction,
    )
    if len(splits.train) < 2:
        raise ValueError(
            f"the training split of {catalog_path} has {len(splits.train)} products; need at least 2"
        )
    labels, identities = identity_labels(splits.train)
    model = build_model(config.model, [p.text for p in splits.train]).to(device)
    objective = build_objective(
        config, len(identities), model.image_tower.feature_dim, model.text_tower.feature_dim
    ).to(device)
    return splits, labels, model, objective


def train(
    config: TrainConfig,
    catalog_path: str | Path,
    out_dir: str | Path,
    *,
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
) -> Path:
    """Train `config` on the catalogue's train split and return the best artifact's path.

    `out_dir` receives `model/` (the best artifact so far), `checkpoint.pt` (for
    --resume) and `train_log.jsonl` (one line of loss and val metrics per epoch).
    """
    out = Path(out_dir)
    resolved = resolve_device(device)
    dist_info = init_distributed(resolved)
    if resolved.type == "cuda" and dist_info.enabled:
        resolved = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(resolved)
    # Every rank builds the same initial weights: DDP syncs the model's, not the
    # objective's (CMPC's classifier). Then each rank draws its own flips.
    _seed_everything(config.seed)
    try:
        splits, labels, model, objective = _prepare(config, Path(catalog_path), resolved)
        _seed_everything(config.seed + dist_info.rank)
        optimizer = torch.optim.AdamW(
            param_groups(config, model, objective), weight_decay=config.optim.weight_decay
        )
        state = TrainState(model, objective, optimizer)
        if dist_info.is_main:
            out.mkdir(parents=True, exist_ok=True)
        if resume and (out / CHECKPOINT).is_file():
            _restore(state, out / CHECKPOINT, config)
        _run_epochs(config, state, splits, labels, out, dist_info, progress)
    finally:
        cleanup(dist_info)
    return out / MODEL_DIR


def _without_epochs(config: dict) -> dict:
    """Resuming may extend a run, so the epoch count alone may differ."""
    return {**config, "optim": {k: v for k, v in config["optim"].items() if k != "epochs"}}


def _restore(state: TrainState, path: Path, config: TrainConfig) -> None:
    saved = load_checkpoint(path)
    if _without_epochs(saved["config"]) != _without_epochs(config.to_dict()):
        raise ValueError(
            f"{path} was written by another training config; use a new --out or drop --resume"
        )
    state.model.load_state_dict(saved["model"])
    state.objective.load_state_dict(saved["objective"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.pending_scheduler_state = saved.get("scheduler")
    state.epoch, state.best_score = saved["epoch"], saved["best_score"]
    logger.info("resuming after epoch %d (best val score %.4f)", state.epoch, state.best_score)


def _run_epochs(
    config: TrainConfig,
    state: TrainState,
    splits: Splits,
    labels: list[int],
    out: Path,
    dist_info: DistInfo,
    progress: bool,
) -> None:
    model = state.model
    dataset = _training_dataset(config, model, splits, labels, out, dist_info)
    sampler = IdentityBatchSampler(
        labels,
        config.optim.batch_size,
        per_identity=config.optim.per_identity,
        seed=config.seed,
        rank=dist_info.rank,
        world_size=dist_info.world_size,
    )
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate_pairs,
        num_workers=config.data.num_workers,
    )
    steps = (
        len(loader)
        if not config.optim.max_steps_per_epoch
        else min(len(loader), config.optim.max_steps_per_epoch)
    )
    if state.scheduler is None:
        state.scheduler = build_scheduler(config, state.optimizer, steps * config.optim.epochs)
        if state.pending_scheduler_state:
            state.scheduler.load_state_dict(state.pending_scheduler_state)
            # Building the scheduler set each group's lr to the first step's; restore the saved one.
            for group, lr in zip(
                state.optimizer.param_groups, state.scheduler.get_last_lr(), strict=True
            ):
                group["lr"] = lr
    for epoch in range(state.epoch + 1, config.optim.epochs + 1):
        frozen = apply_freezing(config, model, epoch)
        sampler.set_epoch(epoch)
        loss = _train_one_epoch(config, state, loader, dist_info, epoch, frozen, progress)
        state.epoch = epoch
        if dist_info.is_main:
            _end_of_epoch(config, state, splits, out, loss)
        barrier(dist_info)


def _training_dataset(
    config: TrainConfig,
    model: JointModel,
    splits: Splits,
    labels: list[int],
    out: Path,
    dist_info: DistInfo,
) -> Dataset:
    blocks = config.optim.image_frozen_blocks
    if not blocks:
        return PairDataset(splits.train, labels, model.transform, flip=config.optim.flip)
    if dist_info.is_main:  # one process computes, the others read it from disk
        compute_prefix_cache(model, splits.train, blocks, cache_dir=out)
    barrier(dist_info)
    cache = compute_prefix_cache(model, splits.train, blocks, cache_dir=out)
    return CachedPairDataset(cache, splits.train, labels)


def _train_one_epoch(
    config: TrainConfig,
    state: TrainState,
    loader: DataLoader,
    dist_info: DistInfo,
    epoch: int,
    frozen: bool,
    progress: bool,
) -> float:
    model, objective = state.model, state.objective
    model.train()
    if frozen:  # keep BatchNorm statistics of frozen towers as they are
        model.image_tower.eval()
        model.text_tower.eval()
    runner: nn.Module = model
    if dist_info.enabled:
        runner = DistributedDataParallel(model, find_unused_parameters=frozen)
    device = model.device
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else contextlib.nullcontext()
    )
    steps = (
        len(loader)
        if not config.optim.max_steps_per_epoch
        else min(len(loader), config.optim.max_steps_per_epoch)
    )
    bar = tqdm(
        total=steps,
        desc=f"epoch {epoch}/{config.optim.epochs}",
        unit="batch",
        disable=not (progress and dist_info.is_main),
    )
    total, seen, count, started = 0.0, 0, 0, time.perf_counter()
    for pixels, texts, labels in loader:
        if count >= steps:
            break
        pixels, labels = pixels.to(device, non_blocking=True), labels.to(device)
        with autocast:
            outputs = runner(
                pixels, model.tokenize(texts), image_from_block=config.optim.image_frozen_blocks
            )
            loss = objective(outputs, labels)
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if dist_info.enabled:  # the objective's own parameters are not under DDP
            _all_reduce_grads(objective, dist_info)
        state.optimizer.step()
        if state.scheduler is not None:
            state.scheduler.step()
        total += float(loss.detach())
        seen += len(texts)
        count += 1
        rate = seen * dist_info.world_size / (time.perf_counter() - started)
        bar.update(1)
        bar.set_postfix(loss=f"{total / count:.4f}", items_s=f"{rate:.0f}")
    bar.close()
    return total / max(1, count)


def _all_reduce_grads(module: nn.Module, dist_info: DistInfo) -> None:
    for param in module.parameters():
        if param.grad is not None:
            torch.distributed.all_reduce(param.grad)
            param.grad /= dist_info.world_size


def _end_of_epoch(
    config: TrainConfig, state: TrainState, splits: Splits, out: Path, loss: float
) -> None:
    record: dict[str, object] = {"epoch": state.epoch, "loss": loss}
    if splits.val:
        val = evaluate_seed(
            state.model, splits.val, gallery_size=config.data.val_gallery, seed=config.seed
        )
        score = _score(val)
        record["val"] = val
    else:  # no validation products (tiny catalogues): keep the latest
        score = float(state.epoch)
    improved = score > state.best_score
    if improved:
        state.best_score = score
        save_artifact(
            state.model,
            out / MODEL_DIR,
            metrics={
                "config": config.name,
                "epoch": state.epoch,
                "train_loss": loss,
                "split": {
                    "seed": config.data.split_seed,
                    "val_fraction": config.data.val_fraction,
                    "test_fraction": config.data.test_fraction,
                },
                "val": record.get("val"),
            },
        )
    record["best"] = improved
    with (out / LOG_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    save_checkpoint(
        out / CHECKPOINT,
        {
            "config": config.to_dict(),
            "model": state.model.state_dict(),
            "objective": state.objective.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict() if state.scheduler is not None else None,
            "epoch": state.epoch,
            "best_score": state.best_score,
        },
    )
    summary = ", ".join(
        f"{d} R@1 {m['R@1']:.3f} R@10 {m['R@10']:.3f}"
        for d, m in (record.get("val") or {}).items()  # type: ignore[union-attr]
    )
    logger.info(
        "epoch %d: loss %.4f %s%s", state.epoch, loss, summary, " (best)" if improved else ""
    )
