"""The training loop: seeded, resumable, data-parallel under torchrun, AMP on CUDA."""

from __future__ import annotations

import contextlib
import logging
import random
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from models import ConfigError, JointModel, build_model, read_catalog
from models.artifact import resolve_device
from models.progress import progress_bar
from training.checkpoint import CHECKPOINT
from training.config import TrainConfig
from training.data import (
    IdentityBatchSampler,
    PairDataset,
    Splits,
    collate_pairs,
    identity_labels,
    similarity_key,
)
from training.distributed import DistInfo, barrier, cleanup, init_distributed
from training.epoch_end import LOG_FILE, MODEL_DIR, end_of_epoch
from training.grad_cache import cached_gradient_step
from training.imprint import imprint_cmpc
from training.init import model_from_artifact, take_text_side
from training.objectives import CMPLObjective, build_objective, multi_field_loss
from training.optim import apply_freezing, build_scheduler, param_groups
from training.prefix_cache import CachedPairDataset, compute_prefix_cache
from training.queries import FieldQueries, all_wordings, batch_queries, query_rng
from training.run_state import TrainState, restore_state, save_state

logger = logging.getLogger(__name__)
__all__ = ["LOG_FILE", "MODEL_DIR", "train"]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _prepare(
    config: TrainConfig,
    catalog_path: Path,
    *,
    device: torch.device,
    init: Path | None,
    init_text: Path | None,
    imprint: bool,
) -> tuple[Splits, list[int], JointModel, nn.Module]:
    catalog = read_catalog(catalog_path)
    logger.info(catalog.summary())
    splits = config.data.split.split(catalog.products)
    if len(splits.train) < 2:
        raise ValueError(
            f"the training split of {catalog_path} has {len(splits.train)} products; need at least 2"
        )
    labels, identities = identity_labels(splits.train)
    if init is not None:
        model = model_from_artifact(config.model, init)
    else:
        model = build_model(
            config.model,
            [p.text for p in splits.train] + all_wordings(list(config.fields), splits.train),
        )
        if init_text is not None:
            model = take_text_side(model, init_text)
    model = model.to(device)
    objective = build_objective(
        config,
        len(identities),
        image_dim=model.image_tower.feature_dim,
        text_dim=model.text_tower.feature_dim,
    ).to(device)
    if imprint and isinstance(objective, CMPLObjective) and objective.cmpc is not None:
        imprint_cmpc(objective.cmpc, model, list(identities))  # titles in label order
    return splits, labels, model, objective


def train(
    config: TrainConfig,
    catalog_path: str | Path,
    out_dir: str | Path,
    *,
    resume: bool = False,
    init: str | Path | None = None,
    init_text: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
) -> Path:
    """Train `config` on the catalogue's train split and return the best artifact's path.

    `out_dir` receives `model/` (the best artifact so far), `checkpoint.pt` (for
    --resume; also written every `checkpoint_minutes` inside an epoch) and
    `train_log.jsonl` (one line of loss, speed and val metrics per epoch). `init`: an
    artifact directory whose weights replace the pretrained towers' at the start
    (fine-tuning a trained model); `init_text`: an artifact whose text side (tower,
    projection, tokenizer) replaces the fresh one, the image side starting as the config
    says (a new image tower trained into a trained text space). A resumed run takes its
    weights from the checkpoint.
    """
    if init is not None and init_text is not None:
        raise ConfigError("init and init_text exclude each other: init takes both sides")
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
    resuming = resume and (out / CHECKPOINT).is_file()
    try:
        init_path = Path(init) if init is not None else None
        splits, labels, model, objective = _prepare(
            config,
            Path(catalog_path),
            device=resolved,
            init=init_path,
            init_text=Path(init_text) if init_text is not None else None,
            # A resumed run restores the classifier it trained.
            imprint=config.loss.cmpc_init == "text" and not resuming,
        )
        _seed_everything(config.seed + dist_info.rank)
        optimizer = torch.optim.AdamW(
            param_groups(config, model, objective), weight_decay=config.optim.weight_decay
        )
        state = TrainState(model, objective, optimizer)
        if dist_info.is_main:
            out.mkdir(parents=True, exist_ok=True)
        if resuming:
            restore_state(state, out / CHECKPOINT, config)
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
        keys=[similarity_key(p) for p in splits.train]
        if config.optim.hard_batch_fraction
        else None,
        hard_fraction=config.optim.hard_batch_fraction,
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
            end_of_epoch(config, state, splits=splits, out=out, loss=loss, speed=speed)
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
    if config.optim.freeze_text:  # no dropout: the locked side gives the same targets
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
            save_state(config, state, run.out)
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
