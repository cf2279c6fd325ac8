"""Training checkpoints (model, objective, optimizer, epoch, RNG): for --resume only.
A checkpoint is not an artifact; the artifact is written separately by save_artifact."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.files import write_atomic

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: an interrupted save leaves the previous checkpoint usable."""
    state = {
        **state,
        "rng": {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
        },
    }
    write_atomic(path, lambda staged: torch.save(state, staged))


def load_checkpoint(path: Path) -> dict[str, Any]:
    # Our own file, written by save_checkpoint; it holds RNG tuples, hence weights_only=False.
    state = torch.load(path, map_location="cpu", weights_only=False)
    random.setstate(state["rng"]["python"])
    np.random.set_state(state["rng"]["numpy"])
    torch.set_rng_state(state["rng"]["torch"])
    return state
