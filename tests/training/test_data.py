"""training.data: title-grouped deterministic splits, identity labels, batch sampling."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import torch

from models import ConfigError, Product, read_catalog
from models.config import PreprocessConfig
from models.transforms import ImageTransform
from training.config import DataConfig
from training.data import (
    DEFAULT_SPLIT,
    IdentityBatchSampler,
    PairDataset,
    SplitSpec,
    collate_pairs,
    identity_labels,
    similarity_key,
    split_products,
)


@pytest.fixture(scope="module")
def products(sample_catalog: Path) -> list[Product]:
    return read_catalog(sample_catalog).products


def _sides(splits) -> dict[str, str]:
    return {p.id: name for name in ("train", "val", "test") for p in splits.get(name)}


def test_split_is_deterministic_and_covers_every_product(products: list[Product]) -> None:
    first, second = split_products(products), SplitSpec(seed=0).split(products)
    assert first == second
    assert sorted(_sides(first)) == sorted(p.id for p in products)
    sizes = {name: len(first.get(name)) for name in ("train", "val", "test")}
    assert sum(sizes.values()) == len(products)
    assert 50 <= sizes["val"] <= 150 and 50 <= sizes["test"] <= 150  # about 10% each of 1,000
    assert SplitSpec(seed=1).split(products) != first  # the seed matters


def test_all_products_of_a_title_fall_on_one_side(products: list[Product]) -> None:
    # the sample has repeated titles; add more copies so every side gets groups
    copies = [Product(f"{p.id}-copy{i}", p.image, p.text) for p in products[:300] for i in range(2)]
    splits = SplitSpec(0, val_fraction=0.2, test_fraction=0.2).split(products + copies)
    sides_of_title: dict[str, set[str]] = defaultdict(set)
    for name in ("train", "val", "test"):
        for product in splits.get(name):
            sides_of_title[product.text].add(name)
    assert all(len(sides) == 1 for sides in sides_of_title.values())
    assert {name for sides in sides_of_title.values() for name in sides} == {"train", "val", "test"}


def test_adding_or_reordering_products_moves_no_old_product(products: list[Product]) -> None:
    old = _sides(split_products(products[:600]))
    shuffled = products[:]
    random.Random(0).shuffle(shuffled)
    grown = _sides(split_products(shuffled))
    assert {pid: grown[pid] for pid in old} == old


def test_fractions_of_zero_and_one(products: list[Product]) -> None:
    everything = SplitSpec(val_fraction=0.0, test_fraction=0.0).split(products)
    assert len(everything.train) == len(products) and not everything.val and not everything.test
    assert len(SplitSpec(test_fraction=1.0).split(products).test) == len(products)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        everything.get("dev")


def test_the_split_has_one_owner_of_its_defaults() -> None:
    """80/10/10 with seed 0: the training config, the recorded metrics and their reader
    agree, and an artifact that recorded no split reads back the defaults."""
    assert DEFAULT_SPLIT == SplitSpec(seed=0, val_fraction=0.1, test_fraction=0.1)
    assert DataConfig().split == DEFAULT_SPLIT
    assert SplitSpec.from_metrics({}) == DEFAULT_SPLIT
    assert SplitSpec.from_metrics({"split": None}) == DEFAULT_SPLIT
    custom = DataConfig(split_seed=3, val_fraction=0.2, test_fraction=0.05).split
    metrics = {"split": custom.to_metrics()}
    assert metrics == {"split": {"seed": 3, "val_fraction": 0.2, "test_fraction": 0.05}}
    assert SplitSpec.from_metrics(metrics) == custom
    assert SplitSpec.from_metrics({"split": {"seed": 3}}) == SplitSpec(seed=3)


def test_an_unreadable_recorded_split_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown key\\(s\\) in the split in metrics.json: frac"):
        SplitSpec.from_metrics({"split": {"frac": 0.1}})
    with pytest.raises(ConfigError, match="invalid val_fraction in the split in metrics.json"):
        SplitSpec.from_metrics({"split": {"val_fraction": "0.1"}})


def test_identity_labels_follow_titles_in_first_seen_order() -> None:
    titles = ["b", "a", "b", "c", "a"]
    labels, index = identity_labels(
        [Product(str(i), Path("x.jpg"), t) for i, t in enumerate(titles)]
    )
    assert labels == [0, 1, 0, 2, 1]
    assert index == {"b": 0, "a": 1, "c": 2}


# ------------------------------------------------------------------- batch sampling

# identities of sizes 1..7, interleaved: 28 products, 7 identities
LABELS = [label for repeat in range(7) for label in range(7) if repeat <= label]


def _batches(sampler: IdentityBatchSampler) -> list[list[int]]:
    batches = list(sampler)
    assert len(batches) == len(sampler)
    return batches


@pytest.mark.parametrize("epoch", [0, 1, 5])
def test_each_index_at_most_once_and_identities_kept_together(epoch: int) -> None:
    sampler = IdentityBatchSampler(LABELS, batch_size=6, per_identity=4, seed=3)
    sampler.set_epoch(epoch)
    batches = _batches(sampler)
    flat = [index for batch in batches for index in batch]
    assert len(flat) == len(set(flat))
    assert all(len(batch) >= 2 for batch in batches)
    assert all(len(batch) <= 6 for batch in batches)
    per_label = Counter(LABELS[i] for i in flat)
    assert all(count <= 4 for count in per_label.values())
    # an identity's products come one after another, so a batch holds them together
    order = [LABELS[i] for i in flat]
    runs = [label for i, label in enumerate(order) if i == 0 or order[i - 1] != label]
    assert len(runs) == len(set(runs))
    # every identity takes part (nothing here is dropped: the last batch has >= 2 items)
    assert set(per_label) == set(LABELS)
    assert sum(per_label.values()) == sum(min(4, LABELS.count(label)) for label in set(LABELS))


def test_the_same_epoch_gives_the_same_batches_and_epochs_differ() -> None:
    sampler = IdentityBatchSampler(LABELS, batch_size=6, seed=3)
    sampler.set_epoch(2)
    again = IdentityBatchSampler(LABELS, batch_size=6, seed=3)
    again.set_epoch(2)
    assert _batches(sampler) == _batches(again)
    again.set_epoch(3)
    assert _batches(sampler) != _batches(again)


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_take_disjoint_equal_shares(world_size: int) -> None:
    labels = [i // 2 for i in range(50)]  # 25 identities of 2
    single = IdentityBatchSampler(labels, batch_size=4, seed=1)
    single.set_epoch(1)
    shares = []
    for rank in range(world_size):
        sampler = IdentityBatchSampler(
            labels, batch_size=4, seed=1, rank=rank, world_size=world_size
        )
        sampler.set_epoch(1)
        shares.append(_batches(sampler))
    assert len({len(share) for share in shares}) == 1  # every rank steps the same number of times
    flat = [index for share in shares for batch in share for index in batch]
    assert len(flat) == len(set(flat))  # no product on two ranks
    # the ranks interleave the single-process batches (dropping a remainder)
    assert sorted(map(tuple, (b for share in shares for b in share))) == sorted(
        map(tuple, _batches(single)[: len(shares[0]) * world_size])
    )


def test_a_one_item_last_batch_is_dropped() -> None:
    sampler = IdentityBatchSampler(list(range(5)), batch_size=2, per_identity=1)
    assert [len(batch) for batch in _batches(sampler)] == [2, 2]


# 240 identities of 1 or 2 products in 12 kinds ("men|shirts"), interleaved
HARD_LABELS = [label for label in range(240) for _ in range(1 + label % 2)]
HARD_KEYS = [f"kind{label % 12}" for label in HARD_LABELS]


def _same_kind_pairs(batches: list[list[int]]) -> float:
    """Share of the pairs inside a batch that are two products of one kind."""
    same = total = 0
    for batch in batches:
        kinds = [HARD_KEYS[i] for i in batch]
        for a in range(len(kinds)):
            for b in range(a + 1, len(kinds)):
                same += kinds[a] == kinds[b]
                total += 1
    return same / total


def test_hard_batches_gather_one_kind_and_still_cover_the_epoch() -> None:
    def sampler(fraction: float) -> IdentityBatchSampler:
        made = IdentityBatchSampler(
            HARD_LABELS, 16, per_identity=2, seed=4, keys=HARD_KEYS, hard_fraction=fraction
        )
        made.set_epoch(1)
        return made

    random_batches = _batches(sampler(0.0))
    hard_batches = _batches(sampler(0.5))
    for batches in (random_batches, hard_batches):
        flat = sorted(index for batch in batches for index in batch)
        assert flat == list(range(len(HARD_LABELS)))  # every product once
        assert all(2 <= len(batch) <= 16 for batch in batches)
    # half of each hard batch is products of one or two kinds
    assert all(len({HARD_KEYS[i] for i in batch[:8]}) <= 2 for batch in hard_batches[:-1])
    assert _same_kind_pairs(hard_batches) > 2.5 * _same_kind_pairs(random_batches)
    # without hard batches the keys change nothing
    plain = IdentityBatchSampler(HARD_LABELS, 16, per_identity=2, seed=4)
    plain.set_epoch(1)
    assert _batches(plain) == random_batches


def test_hard_batches_are_seeded_and_need_keys() -> None:
    def batches(epoch: int) -> list[list[int]]:
        made = IdentityBatchSampler(HARD_LABELS, 16, seed=4, keys=HARD_KEYS, hard_fraction=0.5)
        made.set_epoch(epoch)
        return _batches(made)

    assert batches(2) == batches(2) != batches(3)
    with pytest.raises(ValueError, match="needs one similarity key per product"):
        IdentityBatchSampler(HARD_LABELS, 16, hard_fraction=0.5)
    with pytest.raises(ValueError, match=r"hard_fraction must lie in \[0, 1\)"):
        IdentityBatchSampler(HARD_LABELS, 16, keys=HARD_KEYS, hard_fraction=1.0)


def test_the_similarity_key_is_gender_and_article_type(products: list[Product]) -> None:
    product = next(p for p in products if p.attributes.get("articleType"))
    gender, article = product.attributes["gender"], product.attributes["articleType"]
    assert similarity_key(product) == f"{gender.lower()}|{article.lower()}"


def test_pair_dataset_and_collate(products: list[Product]) -> None:
    labels, _ = identity_labels(products[:4])
    dataset = PairDataset(
        products[:4], labels, ImageTransform(PreprocessConfig(height=32, width=24)), flip=True
    )
    assert len(dataset) == 4
    pixels, texts, batch_labels, indices = collate_pairs([dataset[i] for i in range(4)])
    assert pixels.shape == (4, 3, 32, 24) and pixels.dtype == torch.float32
    assert texts == [p.text for p in products[:4]]
    assert batch_labels.tolist() == labels
    assert indices == [0, 1, 2, 3]
