"""training.prefix_cache: the frozen first blocks computed once per photo give the
training loop the same batches as computing them live (as the shipped default model
was trained: Lite0's stem and first 8 blocks frozen and cached)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from models import JointModel, ModelConfig, Product, build_model, read_catalog
from training.data import IdentityBatchSampler, PairDataset, collate_pairs, identity_labels
from training.prefix_cache import CachedPairDataset, compute_prefix_cache

BLOCKS = 8
# The cache stores float16: about three significant digits.
FP16 = {"rtol": 4e-3, "atol": 4e-3}


@pytest.fixture(scope="module")
def products(tmp_path_factory: pytest.TempPathFactory, sample_catalog: Path) -> list[Product]:
    catalog = read_catalog(sample_catalog).products
    by_title: dict[str, list[Product]] = {}
    for product in catalog:  # a few titles with several photos each, so batches group them
        by_title.setdefault(product.text, []).append(product)
    groups = [group[:3] for group in by_title.values() if len(group) >= 2][:5]
    return [product for group in groups for product in group]


@pytest.fixture(scope="module")
def model(products: list[Product]) -> JointModel:
    config = ModelConfig.from_dict(
        {
            "image": {"name": "efficientnet-lite0"},
            "text": {"name": "bilstm", "word_dim": 8, "hidden_dim": 8},
            "preprocess": {"height": 64, "width": 48},
            "embed_dim": 8,
        }
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build_model(config, [p.text for p in products])


def _loader(dataset: torch.utils.data.Dataset, labels: list[int]) -> DataLoader:
    sampler = IdentityBatchSampler(labels, 4, per_identity=2, seed=3)
    sampler.set_epoch(1)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_pairs)


def test_cached_batches_equal_live_ones(
    model: JointModel, products: list[Product], tmp_path: Path
) -> None:
    """Same items in the same batches, and activations (and so embeddings) equal to the
    frozen blocks run live. Frozen blocks are a fixed function: running BatchNorm
    statistics, as the cache computes them."""
    labels, _ = identity_labels(products)
    cache = compute_prefix_cache(model, products, BLOCKS, cache_dir=tmp_path)
    assert cache.dtype == torch.float16 and len(cache) == len(products)
    cached = _loader(CachedPairDataset(cache, products, labels), labels)
    live = _loader(PairDataset(products, labels, model.transform, flip=False), labels)
    tower = model.image_tower.eval()
    batches = 0
    for (activations, texts, ids, indices), (pixels, live_texts, live_ids, live_indices) in zip(
        cached, live, strict=True
    ):
        assert (texts, indices) == (live_texts, live_indices)
        assert torch.equal(ids, live_ids)
        with torch.no_grad():
            torch.testing.assert_close(activations, tower.prefix(pixels, BLOCKS), **FP16)
            tokens = model.tokenize(texts)
            from_cache = model.eval()(activations, tokens, image_from_block=BLOCKS)[2]
            from_pixels = model(pixels, tokens)[2]
        torch.testing.assert_close(from_cache, from_pixels, **FP16)
        batches += 1
    assert batches >= 2


def test_the_cache_is_read_back_and_keyed_by_blocks(
    model: JointModel, products: list[Product], tmp_path: Path
) -> None:
    first = compute_prefix_cache(model, products, BLOCKS, cache_dir=tmp_path)
    files = list(tmp_path.glob("prefix_cache_*.pt"))
    assert len(files) == 1
    assert torch.equal(compute_prefix_cache(model, products, BLOCKS, cache_dir=tmp_path), first)
    compute_prefix_cache(model, products[:4], BLOCKS - 1, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("prefix_cache_*.pt"))) == 2  # another prefix, another file
