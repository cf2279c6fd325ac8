"""The end of an epoch: score on val, keep the best artifact, log the epoch, checkpoint."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, cast

from models import save_artifact
from models.hubness import encode_photo_bank, sample_bank
from training.config import TrainConfig
from training.data import Splits
from training.run_state import TrainState, save_state
from training.validation import validate

logger = logging.getLogger(__name__)
MODEL_DIR = "model"
LOG_FILE = "train_log.jsonl"


def end_of_epoch(
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
        val, score = validate(
            state.model,
            splits.val,
            gallery_size=config.data.val_gallery,
            seed=config.data.split_seed,
        )
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
    save_state(config, state, out)
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
