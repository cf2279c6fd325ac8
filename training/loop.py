"""The training loop: seeded, resumable, data-parallel under torchrun, AMP on CUDA."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from models import ConfigError, JointModel, build_model, read_catalog, save_artifact
from models.artifact import resolve_device
from models.hubness import encode_photo_bank, sample_bank
from models.progress import progress_bar
from training.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from training.config import TrainConfig
from training.data import (
    IdentityBatchSampler,
    PairDataset,
    Splits,
    collate_pairs,
    identity_labels,
)
from training.distributed import DistInfo, barrier, cleanup, init_distributed
from training.evaluate import evaluate_catalog, evaluate_categories, evaluate_seed, selection_score
from training.grad_cache import cached_gradient_step
from training.init import model_from_artifact
from training.objectives import build_objective, multi_field_loss
from training.optim import apply_freezing, build_scheduler, param_groups
from training.prefix_cache import CachedPairDataset, compute_prefix_cache
from training.queries import FieldQueries, all_wordings, batch_queries, query_rng

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
    step: int = 0  # batches of epoch + 1 already trained (a mid-epoch checkpoint)
    partial_loss: tuple[float, int] = (0.0, 0)  # loss sum and batches of those steps
    best_score: float = float("-inf")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _validate(model: JointModel, config: TrainConfig, val: list) -> tuple[dict, float]:
    """Val metrics and the model-selection score.

    The seed protocol (a 1,000-product gallery) is logged for continuity; selection uses
    the title task and the category tasks with every val photo as the gallery
    (training.evaluate.selection_score), the catalogue-scale tasks in miniature. The
    seed gallery is drawn with the split's seed, not the run's, so that runs trained with
    other seeds are scored on the same gallery.
    """
    seed = evaluate_seed(
        model, val, gallery_size=config.data.val_gallery, seed=config.data.split_seed
    )
    photos = model.encode_images([p.image for p in val])
    title = evaluate_catalog(model, val, val, gallery_embeddings=(photos, None))
    categories = evaluate_categories(model, val, val, gallery_embeddings=photos)
    metrics = {**seed, "title_to_photo": title["text_to_image"], "categories": categories}
    return metrics, selection_score(title["text_to_image"], categories)


def _prepare(
    config: TrainConfig, catalog_path: Path, *, device: torch.device, init: Path | None
) -> tuple[Splits, list[int], JointModel, nn.Module]:
    catalog = read_catalog(catalog_path)
    logger.info(catalog.summary())
    splits = config.data.split.split(catalog.products)
    if len(splits.train) < 2:
        raise ValueError(
            f"the training split of {catalog_path} has {len(splits.train)} products; need at least 2"
        )
    labels, identities = identity_labels(splits.train)
    model = (
        model_from_artifact(config.model, init)
        if init is not None
        else build_model(
            config.model,
            [p.text for p in splits.train] + all_wordings(list(config.fields), splits.train),
        )
    ).to(device)
    objective = build_objective(
        config,
        len(identities),
        image_dim=model.image_tower.feature_dim,
        text_dim=model.text_tower.feature_dim,
    ).to(device)
    return splits, labels, model, objective


def train(
    config: TrainConfig,
    catalog_path: str | Path,
    out_dir: str | Path,
    *,
    resume: bool = False,
    init: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
) -> Path:
    """Train `config` on the catalogue's train split and return the best artifact's path.

    `out_dir` receives `model/` (the best artifact so far), `checkpoint.pt` (for
    --resume; also written every `checkpoint_minutes` inside an epoch) and
    `train_log.jsonl` (one line of loss, speed and val metrics per epoch). `init`: an
    artifact directory whose weights replace the pretrained towers' at the start
    (fine-tuning a trained model); a resumed run takes its weights from the checkpoint.
    """
    out = Path(out_dir)
    resolved = resolve_device(device)
    dist_info = init_distributed(resolved)
    if dist_info.enabled and config.optim.grad_cache_chunk:
        cleanup(dist_info)
        raise ConfigError(
            "[optim] grad_cache_chunk steps one process's batch; under torchrun each rank "
            "has its own batch: leave it 0 and grow the batch with more ranks"
        )
    if resolved.type == "cuda" and dist_info.enabled:
        resolved = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(resolved)
    # Every rank builds the same initial weights: DDP syncs the model's, not the
    # objective's (CMPC's classifier). Then each rank draws its own flips.
    _seed_everything(config.seed)
    try:
        init_path = Path(init) if init is not None else None
        splits, labels, model, objective = _prepare(
            config, Path(catalog_path), device=resolved, init=init_path
        )
        _seed_everything(config.seed + dist_info.rank)
        optimizer = torch.optim.AdamW(
            param_groups(config, model, objective), weight_decay=config.optim.weight_decay
        )
        state = TrainState(model, objective, optimizer)
        if dist_info.is_main:
            out.mkdir(parents=True, exist_ok=True)
        if resume and (out / CHECKPOINT).is_file():
            _restore(state, out / CHECKPOINT, config)
        _run_epochs(
            config,
            state,
            splits=splits,
            labels=labels,
            out=out,
            dist_info=dist_info,
            progress=progress,
        )
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
    state.step = saved.get("step", 0)
    state.partial_loss = tuple(saved.get("partial_loss", (0.0, 0)))
    logger.info(
        "resuming after epoch %d, step %d (best val score %.4f)",
        state.epoch,
        state.step,
        state.best_score,
    )


def _run_epochs(
    config: TrainConfig,
    state: TrainState,
    *,
    splits: Splits,
    labels: list[int],
    out: Path,
    dist_info: DistInfo,
    progress: bool,
) -> None:
    model = state.model
    dataset = _training_dataset(
        config, model, splits=splits, labels=labels, out=out, dist_info=dist_info
    )
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
        # Its own generator: starting an iterator draws a seed, which must not move the
        # global RNG that checkpoints save (a mid-epoch resume starts one more iterator).
        generator=torch.Generator().manual_seed(config.seed),
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
        sampler.set_epoch(epoch, skip=state.step)
        run = EpochRun(
            config=config,
            state=state,
            loader=loader,
            dist_info=dist_info,
            epoch=epoch,
            frozen=frozen,
            progress=progress,
            out=out,
            splits=splits,
        )
        loss, speed = _train_one_epoch(run)
        state.epoch, state.step, state.partial_loss = epoch, 0, (0.0, 0)
        if dist_info.is_main:
            _end_of_epoch(config, state, splits=splits, out=out, loss=loss, speed=speed)
        barrier(dist_info)


def _training_dataset(
    config: TrainConfig,
    model: JointModel,
    *,
    splits: Splits,
    labels: list[int],
    out: Path,
    dist_info: DistInfo,
) -> Dataset:
    blocks = config.optim.image_frozen_blocks
    if not blocks:
        return PairDataset(
            splits.train,
            labels,
            model.transform,
            flip=config.optim.flip,
            augment=config.optim.augment,
        )
    if dist_info.is_main:  # one process computes, the others read it from disk
        compute_prefix_cache(model, splits.train, blocks, cache_dir=out)
    barrier(dist_info)
    cache = compute_prefix_cache(model, splits.train, blocks, cache_dir=out)
    return CachedPairDataset(cache, splits.train, labels)


@dataclass(kw_only=True)
class EpochRun:
    """What one epoch of training needs."""

    config: TrainConfig
    state: TrainState
    loader: DataLoader
    dist_info: DistInfo
    epoch: int
    frozen: bool
    progress: bool
    out: Path
    splits: Splits


def _train_one_epoch(run: EpochRun) -> tuple[float, dict[str, float]]:
    """Train one epoch (or its rest, after a mid-epoch checkpoint).
    -> mean loss, {"seconds", "images_per_s"} of the batches trained in this call."""
    config, state, dist_info = run.config, run.state, run.dist_info
    model, objective = state.model, state.objective
    model.train()
    if run.frozen:  # keep BatchNorm statistics of frozen towers as they are
        model.image_tower.eval()
        model.text_tower.eval()
    runner: nn.Module = model
    if dist_info.enabled:
        runner = DistributedDataParallel(model, find_unused_parameters=run.frozen)
    device = model.device
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else contextlib.nullcontext()
    )
    steps = (
        len(run.loader)
        if not config.optim.max_steps_per_epoch
        else min(len(run.loader), config.optim.max_steps_per_epoch)
    )
    bar = progress_bar(
        total=steps,
        initial=state.step,
        desc=f"epoch {run.epoch}/{config.optim.epochs}",
        unit="batch",
        disable=not (run.progress and dist_info.is_main),
    )
    total, count = state.partial_loss
    step = state.step
    seen, started = 0, time.perf_counter()
    last_save = started
    for pixels, texts, labels, indices in run.loader:
        if step >= steps:
            break
        pixels, labels = pixels.to(device, non_blocking=True), labels.to(device)
        queries = batch_queries(
            config.fields,
            [run.splits.train[i] for i in indices],
            query_rng(config.seed, run.epoch, step),
        )
        state.optimizer.zero_grad(set_to_none=True)
        chunk = config.optim.grad_cache_chunk
        if chunk and chunk < len(texts):
            loss = cached_gradient_step(
                model,
                pixels,
                texts,
                [q.texts for q in queries],
                partial(_embedding_loss, objective, config, labels, queries),
                chunk=chunk,
                image_from_block=config.optim.image_frozen_blocks,
                autocast=autocast,
            )
        else:
            with autocast:
                outputs = runner(
                    pixels,
                    model.tokenize(texts),
                    image_from_block=config.optim.image_frozen_blocks,
                    extra_tokens=[model.tokenize(q.texts) for q in queries],
                )
                loss = objective(outputs[:4], labels)
                if queries:
                    loss = loss + multi_field_loss(
                        outputs[2], queries, outputs[4:], config.fields, scale=config.loss.scale
                    )
            loss.backward()
        if dist_info.enabled:  # the objective's own parameters are not under DDP
            _all_reduce_grads(objective, dist_info)
        state.optimizer.step()
        if state.scheduler is not None:
            state.scheduler.step()
        total += float(loss.detach())
        seen += len(texts)
        count += 1
        step += 1
        rate = seen * dist_info.world_size / (time.perf_counter() - started)
        bar.update(1)
        bar.set_postfix(loss=f"{total / count:.4f}", items_s=f"{rate:.0f}")
        if (
            dist_info.is_main
            and step < steps
            and time.perf_counter() - last_save >= 60.0 * config.optim.checkpoint_minutes
        ):
            state.step, state.partial_loss = step, (total, count)
            _save_checkpoint(config, state, run.out)
            last_save = time.perf_counter()
    bar.close()
    seconds = time.perf_counter() - started
    speed = {"seconds": seconds, "images_per_s": seen * dist_info.world_size / max(seconds, 1e-9)}
    return total / max(1, count), speed


def _embedding_loss(
    objective: nn.Module,
    config: TrainConfig,
    labels: torch.Tensor,
    queries: list[FieldQueries],
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    query_embs: list[torch.Tensor],
) -> torch.Tensor:
    """A batch's loss from its embeddings alone (training.grad_cache): CMPL and the
    Siamese objective read only the embeddings of the outputs they are given."""
    loss = objective((image_emb, text_emb, image_emb, text_emb), labels)
    if queries:
        loss = loss + multi_field_loss(
            image_emb, queries, query_embs, config.fields, scale=config.loss.scale
        )
    return loss


def _all_reduce_grads(module: nn.Module, dist_info: DistInfo) -> None:
    for param in module.parameters():
        if param.grad is not None:
            torch.distributed.all_reduce(param.grad)
            param.grad /= dist_info.world_size


def _save_checkpoint(config: TrainConfig, state: TrainState, out: Path) -> None:
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


def _end_of_epoch(
    config: TrainConfig,
    state: TrainState,
    *,
    splits: Splits,
    out: Path,
    loss: float,
    speed: dict[str, float],
) -> None:
    record: dict[str, object] = {"epoch": state.epoch, "loss": loss}
    if splits.val:
        val, score = _validate(state.model, config, splits.val)
        record["val"] = val
        record["score"] = score
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
                "split": config.data.split.to_metrics(),
                "val": record.get("val"),
            },
            # Typical queries and photos the search's hubness correction compares the
            # catalogue with: never a val or test title or photo (the split is by title).
            query_bank=sample_bank([p.text for p in splits.train], seed=config.seed),
            photo_bank=encode_photo_bank(
                state.model, [p.image for p in splits.train], seed=config.seed
            ),
        )
    record["best"] = improved
    record["time"] = speed  # kept apart: the only field that differs between equal runs
    with (out / LOG_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    _save_checkpoint(config, state, out)
    val = cast(dict[str, Any], record.get("val") or {})
    summary = ", ".join(
        f"{d} R@1 {val[d]['R@1']:.3f} R@10 {val[d]['R@10']:.3f}"
        for d in ("text_to_image", "image_to_text")
        if d in val
    )
    logger.info(
        "epoch %d: loss %.4f, %.0f images/s, %.1f min; %s score %.4f%s",
        state.epoch,
        loss,
        speed["images_per_s"],
        speed["seconds"] / 60,
        summary,
        score,
        " (best)" if improved else "",
    )
