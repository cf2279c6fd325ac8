"""Training data: title-grouped splits, identity labels, datasets and batch sampling."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Annotated, Any, cast

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass as pydantic_dataclass
from torch.utils.data import Dataset, Sampler

from models import Product, open_image
from models.config import STRICT_CONFIG, parse_config_section
from models.transforms import ImageTransform
from training.augment import augment


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


Fraction = Annotated[float, Field(ge=0, le=1)]


@pydantic_dataclass(frozen=True, config=STRICT_CONFIG)
class SplitSpec:
    """How a catalogue is split: the one owner of the defaults (seed 0, 80/10/10).

    Training records it in the artifact's metrics.json ("split"); everything that
    scores a model on a split reads it back with `from_metrics`.
    """

    seed: int = 0
    val_fraction: Fraction = 0.1
    test_fraction: Fraction = 0.1

    def split(self, products: Sequence[Product]) -> Splits:
        return split_products(products, self)

    def to_metrics(self) -> dict[str, Any]:
        """The "split" entry of metrics.json."""
        return asdict(self)

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, Any]) -> SplitSpec:
        """The split an artifact was trained with, from its metrics (`model.metrics` or
        metrics.json); the defaults for artifacts that recorded none."""
        return parse_config_section(cls, metrics.get("split") or {}, "the split in metrics.json")


DEFAULT_SPLIT = SplitSpec()


def split_products(products: Sequence[Product], spec: SplitSpec = DEFAULT_SPLIT) -> Splits:
    """Deterministic train/val/test split grouped by exact title.

    Each title is hashed with the seed to a point in [0, 1): every product of one title
    lands on the same side, and a product's side does not depend on the rest of the
    catalogue (adding products never moves old ones across splits).
    """
    sides: dict[str, list[Product]] = {"train": [], "val": [], "test": []}
    for product in products:
        point = _unit_interval(spec.seed, product.text)
        side = (
            "test"
            if point < spec.test_fraction
            else "val"
            if point < spec.test_fraction + spec.val_fraction
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
    """(pixels (3, H, W), title, identity, index) per product.

    Optional horizontal flips, or the full label-preserving augmentation of
    training.augment (which includes flips). No colour jitter: colour is in nearly
    every title. Random draws come from Python's `random`, which checkpoints save.
    """

    def __init__(
        self,
        products: Sequence[Product],
        labels: Sequence[int],
        transform: ImageTransform,
        *,
        flip: bool = False,
        augment: bool = False,
    ) -> None:
        self.products = list(products)
        self.labels = list(labels)
        self.transform = transform
        self.flip = flip
        self.augment = augment

    def __len__(self) -> int:
        return len(self.products)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str, int, int]:
        product = self.products[index]
        image = open_image(product.image)
        if self.augment:
            size = self.transform.config
            # The global generator (seeded per worker): the module has Random's methods.
            rng = cast(random.Random, random)
            image = augment(image, size.height, size.width, rng, flip=self.flip)
        pixels = self.transform(image)
        if self.flip and not self.augment and random.random() < 0.5:
            pixels = pixels.flip(-1)
        return pixels, product.text, self.labels[index], index


def collate_pairs(
    batch: list[tuple[torch.Tensor, str, int, int]],
) -> tuple[torch.Tensor, list[str], torch.Tensor, list[int]]:
    """-> pixels (B, 3, H, W), titles, identities (B,), indices into the dataset."""
    pixels, texts, labels, indices = zip(*batch, strict=True)
    return torch.stack(pixels), list(texts), torch.tensor(labels, dtype=torch.long), list(indices)


HARD_KEY_FIELDS = ("gender", "articleType")


def similarity_key(product: Product) -> str:
    """Products a whole title must be told apart from: same gender, same article type."""
    return "|".join(product.attributes.get(name, "").strip().lower() for name in HARD_KEY_FIELDS)


class IdentityBatchSampler(Sampler[list[int]]):
    """Batches that keep up to `per_identity` products of one title together.

    CMPM's targets only differ from plain matching when identities repeat inside a
    batch; shuffling identities (not products) makes that happen. Each DDP rank takes
    every `world_size`-th batch, so ranks never see the same product in an epoch.

    With `hard_fraction` > 0 and one similarity key per product (`similarity_key`),
    that share of each batch comes from identities ordered by key, so it holds
    products of one or two keys ("men | shirts") that only details tell apart: hard
    negatives for each other. The rest stays drawn at random, so coarse distinctions
    and the shopper queries keep their negatives. Every identity still comes once an
    epoch.
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
        keys: Sequence[str] | None = None,
        hard_fraction: float = 0.0,
    ) -> None:
        if not 0.0 <= hard_fraction < 1.0:
            raise ValueError(f"hard_fraction must lie in [0, 1); got {hard_fraction}")
        if hard_fraction and (keys is None or len(keys) != len(labels)):
            raise ValueError("hard_fraction needs one similarity key per product")
        groups: dict[int, list[int]] = defaultdict(list)
        for index, label in enumerate(labels):
            groups[label].append(index)
        self.groups = list(groups.values())
        self.keys = list(keys) if keys is not None else None
        self.hard_fraction = hard_fraction
        self.batch_size = batch_size
        self.per_identity = per_identity
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, *, skip: int = 0) -> None:
        """Batches of `epoch`, less the first `skip` (already trained on before a
        mid-epoch checkpoint)."""
        self.epoch = epoch
        self.skip = skip

    def _all_batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        order = [rng.sample(group, len(group))[: self.per_identity] for group in self.groups]
        rng.shuffle(order)
        if self.hard_fraction:
            batches = self._mixed_batches(order, rng)
        else:
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

    def _mixed_batches(self, order: list[list[int]], rng: random.Random) -> list[list[int]]:
        """`order` (shuffled identities) split into a hard part, ordered by key (keys in
        random order, identities shuffled within one), and a random part; each batch
        takes its hard quota from the first and fills up from the second."""
        assert self.keys is not None
        keys = self.keys
        cut = round(len(order) * self.hard_fraction)
        distinct = sorted({keys[group[0]] for group in order[:cut]})
        rank = {key: i for i, key in enumerate(rng.sample(distinct, len(distinct)))}
        hard_part = sorted(order[:cut], key=lambda group: rank[keys[group[0]]])  # stable
        hard = [index for group in hard_part for index in group]
        easy = [index for group in order[cut:] for index in group]
        quota = max(1, round(self.batch_size * self.hard_fraction))
        batches: list[list[int]] = []
        while hard or easy:
            take = min(len(hard), quota)
            take = max(take, self.batch_size - len(easy))  # one stream ran dry: the other
            batch, hard = hard[:take], hard[take:]
            rest = self.batch_size - len(batch)
            batch, easy = batch + easy[:rest], easy[rest:]
            batches.append(batch)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._all_batches()[self.rank :: self.world_size][self.skip :]

    def __len__(self) -> int:
        """Batches in a whole epoch for this rank (skipped ones included)."""
        return len(self._all_batches()[self.rank :: self.world_size])
