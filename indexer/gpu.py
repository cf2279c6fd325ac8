"""Where FAISS indices live: the CPU, or every GPU that FAISS reports.

The CPU wheel (`faiss-cpu`) reports no GPU; the `gpu` extra installs `faiss-gpu`, whose
`get_num_gpus()` counts the visible CUDA devices. Indices are always saved as CPU indices,
so one built on a GPU machine loads anywhere; the reader moves them to the GPUs on load.
"""

from __future__ import annotations

import logging
from typing import Literal

import faiss

from indexer.errors import DeviceError
from models.artifact import DEVICES

logger = logging.getLogger(__name__)

Placement = Literal["cpu", "gpu"]


def gpu_count() -> int:
    """Number of GPUs this FAISS build can use (0 with faiss-cpu)."""
    get_num_gpus = getattr(faiss, "get_num_gpus", None)
    return int(get_num_gpus()) if get_num_gpus is not None else 0


def choose_placement(device: object, num_gpus: int) -> Placement:
    """Decide where to search: "gpu" for auto/cuda with GPUs, "cpu" otherwise.

    device: "auto", "cpu" or "cuda" ("cuda:N" and torch.device objects are accepted; FAISS
    uses every GPU it sees either way). Raises DeviceError for an unknown device name, or
    for "cuda" when FAISS sees no GPU.
    """
    device = str(device)
    if device.startswith("cuda:") and device[5:].isdigit():
        device = "cuda"
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    if device == "cpu":
        return "cpu"
    if num_gpus > 0:
        return "gpu"
    if device == "cuda":
        raise DeviceError(
            "device 'cuda' was asked for but FAISS reports no GPU; install the gpu extra "
            "(pip install '.[gpu]', which brings faiss-gpu) or use --device auto or cpu"
        )
    return "cpu"


def to_placement(index: faiss.Index, placement: Placement) -> tuple[faiss.Index, Placement]:
    """Move a CPU index to all GPUs when asked; return the index and where it ended up.

    Index types FAISS cannot clone to the GPU (HNSW, for one) stay on the CPU.
    """
    if placement == "cpu":
        return index, "cpu"
    try:
        return faiss.index_cpu_to_all_gpus(index), "gpu"
    except (RuntimeError, AttributeError) as exc:
        logger.warning("keeping the index on the CPU: FAISS cannot move it to the GPU (%s)", exc)
        return index, "cpu"
