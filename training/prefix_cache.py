"""Precomputed activations of an image tower's frozen first blocks.

On CPU the first blocks of EfficientNet at 128x96 cost most of a training step, yet
learn little for this task when frozen; computing them once per photo and training
only the later blocks makes an epoch several times faster.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from models import ConfigError, JointModel, Product, open_image
from models.files import write_atomic
from models.progress import progress_bar

logger = logging.getLogger(__name__)


def _cache_key(model: JointModel, products: Sequence[Product], blocks: int) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(model.config.image.__dict__, sort_keys=True, default=str).encode())
    digest.update(
        json.dumps(model.config.preprocess.__dict__, sort_keys=True, default=str).encode()
    )
    digest.update(str(blocks).encode())
    for product in products:
        digest.update(f"{product.id}\x00{product.image}\x00".encode())
    return digest.hexdigest()[:16]


@torch.inference_mode()
def compute_prefix_cache(
    model: JointModel,
    products: Sequence[Product],
    blocks: int,
    *,
    cache_dir: Path | None = None,
    batch_size: int = 128,
) -> torch.Tensor:
    """(N, C, h, w) float16 activations after `blocks` blocks, one per product photo.

    Saved under `cache_dir` (when given) so a resumed run does not recompute them.
    """
    tower = model.image_tower
    if not 0 < blocks < tower.num_blocks:
        raise ConfigError(
            f"image_frozen_blocks={blocks} needs an EfficientNet image tower with more than "
            f"{blocks} blocks ({model.config.image.name} has {tower.num_blocks})"
        )
    path = (
        cache_dir / f"prefix_cache_{_cache_key(model, products, blocks)}.pt" if cache_dir else None
    )
    if path is not None and path.is_file():
        logger.info("using cached image-tower activations %s", path)
        return torch.load(path, weights_only=True)
    was_training = tower.training
    tower.eval()
    chunks = []
    batches = range(0, len(products), batch_size)
    for start in progress_bar(batches, desc="frozen image blocks", unit="batch"):
        images = [open_image(p.image) for p in products[start : start + batch_size]]
        pixels = model.transform.batch(images).to(model.device)
        chunks.append(tower.prefix(pixels, blocks).to(torch.float16).cpu())
    tower.train(was_training)
    cache = torch.cat(chunks)
    if path is not None:
        write_atomic(path, lambda staged: torch.save(cache, staged))
    return cache


class CachedPairDataset(Dataset):
    """(activations (C, h, w), title, identity) per product, from a prefix cache."""

    def __init__(
        self, cache: torch.Tensor, products: Sequence[Product], labels: Sequence[int]
    ) -> None:
        self.cache = cache
        self.texts = [p.text for p in products]
        self.labels = list(labels)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str, int, int]:
        return self.cache[index].float(), self.texts[index], self.labels[index], index
