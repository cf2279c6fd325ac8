"""Training data: title-grouped splits, identity labels, datasets and batch sampling."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset, Sampler

from models import Product, open_image
from models.transforms import ImageTransform


@dataclass(frozen=True)
class Splits:
    train: list[Product]
    val: list[Product]
    test: list[Product]

    def get(self, name: str) -> list[Product]:
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split {name!r}; choose train, val or test")
        return getattr(self, name)


def _unit_interval(seed: int, title: str) -> float:
    digest = hashlib.sha256(f"{seed}\x00{title}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_products(
    products: Sequence[Product],
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
) -> Splits:
    """Deterministic train/val/test split grouped by exact title.

    Each title is hashed with the seed to a point in [0, 1): every product of one title
    lands on the same side, and a product's side does not depend on the rest of the
    catalogue (adding products never moves old ones across splits).
    """
    sides: dict[str, list[Product]] = {"train": [], "val": [], "test": []}
    for product in products:
        point = _unit_interval(seed, product.text)
        side = (
            "test"
            if point < test_fraction
            else "val"
            if point < test_fraction + val_fraction
            else "train"
        )
        sides[side].append(product)
    return Splits(**sides)


def identity_labels(products: Sequence[Product]) -> tuple[list[int], dict[str, int]]:
    """One integer identity per distinct title, in first-seen order."""
    index: dict[str, int] = {}
    labels = [index.setdefault(product.text, len(index)) for product in products]
    return labels, index


class PairDataset(Dataset):
    """(pixels (3, H, W), title, identity) per product; optional horizontal flips.

    No colour jitter: colour is in nearly every title.
    """

    def __init__(
        self,
        products: Sequence[Product],
        labels: Sequence[int],
        transform: ImageTransform,
        *,
        flip: bool = False,
    ) -> None:
        self.products = list(products)
        self.labels = list(labels)
        self.transform = transform
        self.flip = flip

    def __len__(self) -> int:
        return len(self.products)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str, int]:
        product = self.products[index]
        pixels = self.transform(open_image(product.image))
        if self.flip and random.random() < 0.5:
            pixels = pixels.flip(-1)
        return pixels, product.text, self.labels[index]


def collate_pairs(
    batch: list[tuple[torch.Tensor, str, int]],
) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    pixels, texts, labels = zip(*batch, strict=True)
    return torch.stack(pixels), list(texts), torch.tensor(labels, dtype=torch.long)


class IdentityBatchSampler(Sampler[list[int]]):
    """Batches that keep up to `per_identity` products of one title together.

    CMPM's targets only differ from plain matching when identities repeat inside a
    batch; shuffling identities (not products) makes that happen. Each DDP rank takes
    every `world_size`-th batch, so ranks never see the same product in an epoch.
    """

    def __init__(
        self,
        labels: Sequence[int],
        batch_size: int,
        *,
        per_identity: int = 4,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        groups: dict[int, list[int]] = defaultdict(list)
        for index, label in enumerate(labels):
            groups[label].append(index)
        self.groups = list(groups.values())
        self.batch_size = batch_size
        self.per_identity = per_identity
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        order = [rng.sample(group, len(group))[: self.per_identity] for group in self.groups]
        rng.shuffle(order)
        flat = [index for group in order for index in group]
        batches = [flat[i : i + self.batch_size] for i in range(0, len(flat), self.batch_size)]
        if len(batches) > 1 and len(batches[-1]) < 2:
            batches.pop()  # a one-item batch has no negatives
        usable = (
            len(batches) - len(batches) % self.world_size
            if len(batches) >= self.world_size
            else len(batches)
        )
        return batches[:usable]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._all_batches()[self.rank :: self.world_size]

    def __len__(self) -> int:
        return len(self._all_batches()[self.rank :: self.world_size])
