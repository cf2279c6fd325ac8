"""training.grad_cache: a chunked step gives the gradients of the whole batch at once."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

import training.distributed
import training.loop
from models import ConfigError, JointModel, ModelConfig, build_model, load_model, read_catalog
from training.config import TrainConfig, parse_config
from training.grad_cache import cached_gradient_step
from training.loop import MODEL_DIR, train
from training.losses import cmpm_loss, multi_positive_loss

TITLES = [f"men navy blue shirt {i % 5}" for i in range(10)]
QUERIES = [["shirts", "navy blue shirts", "tshirts"], ["men", "women"]]


def _model(sample_catalog: Path, config: ModelConfig) -> JointModel:
    texts = [p.text for p in read_catalog(sample_catalog).products] + TITLES
    torch.manual_seed(0)
    model = build_model(config, texts)
    # dropout in both heads: the replayed chunks must draw the same masks; BatchNorm on
    # the photos' side: its running statistics must move once per chunk
    dim = config.embed_dim
    model.image_head = nn.Sequential(nn.Dropout(0.3), model.image_head, nn.BatchNorm1d(dim))
    model.text_head = nn.Sequential(nn.Dropout(0.3), model.text_head)
    return model.train()


def _loss(image: torch.Tensor, text: torch.Tensor, queries: list[torch.Tensor]) -> torch.Tensor:
    labels = torch.arange(len(text)) % 5
    loss = cmpm_loss(image, text, labels)
    for field, embeddings in enumerate(queries):
        positives = (
            torch.rand(len(embeddings), len(image), generator=torch.Generator().manual_seed(field))
            > 0.5
        )
        positives[:, 0] = True
        loss = loss + 0.5 * multi_positive_loss(image, embeddings, positives)
    return loss


def _reference(model: JointModel, pixels: torch.Tensor, chunk: int) -> torch.Tensor:
    """Each chunk forwarded on its own, with its graph, in grad_cache's order."""
    cut = lambda n: [slice(s, min(s + chunk, n)) for s in range(0, n, chunk)]  # noqa: E731
    image = torch.cat([model.image_head(model.image_tower(pixels[s])) for s in cut(len(pixels))])
    titles = torch.cat([model.embed_texts(model.tokenize(TITLES[s])) for s in cut(len(TITLES))])
    queries = [
        torch.cat([model.embed_texts(model.tokenize(q[s])) for s in cut(len(q))]) for q in QUERIES
    ]
    loss = _loss(image, titles, queries)
    loss.backward()
    return loss.detach()


@pytest.mark.parametrize("chunk", [2, 4, 5, 10])  # 4: a ragged last chunk
def test_cached_gradients_equal_one_pass_over_the_chunks(
    sample_catalog: Path, tiny_model_config: ModelConfig, chunk: int
) -> None:
    pixels = torch.randn(10, 3, 32, 24, generator=torch.Generator().manual_seed(1))
    reference = _model(sample_catalog, tiny_model_config)
    cached = _model(sample_catalog, tiny_model_config)
    torch.manual_seed(7)
    expected = _reference(reference, pixels, chunk)
    torch.manual_seed(7)
    got = cached_gradient_step(cached, pixels, TITLES, QUERIES, _loss, chunk=chunk)
    assert got == pytest.approx(float(expected), abs=1e-5)
    for (name, a), (_, b) in zip(
        reference.named_parameters(), cached.named_parameters(), strict=True
    ):
        if a.grad is None:
            assert b.grad is None or not b.grad.any(), name
            continue
        torch.testing.assert_close(b.grad, a.grad, atol=1e-5, rtol=1e-4, msg=name)
    # BatchNorm's running statistics move once per chunk, as in the reference
    for (name, a), (_, b) in zip(reference.named_buffers(), cached.named_buffers(), strict=True):
        torch.testing.assert_close(b, a, msg=name)


def test_a_chunk_below_one_is_refused(sample_catalog: Path, tiny_model_config: ModelConfig) -> None:
    with pytest.raises(ValueError, match="chunk must be at least 1"):
        cached_gradient_step(
            _model(sample_catalog, tiny_model_config),
            torch.zeros(2, 3, 32, 24),
            TITLES[:2],
            [],
            _loss,
            chunk=0,
        )


def test_training_with_cached_gradients(
    tiny_config: TrainConfig, tiny_catalog, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    config = replace(
        tiny_config,
        optim=replace(tiny_config.optim, epochs=1, batch_size=16, grad_cache_chunk=4),
        fields={"articleType": 0.5},
    )
    artifact = train(config, tiny_catalog(64), tmp_path / "run", device="cpu", progress=False)
    assert artifact == tmp_path / "run" / MODEL_DIR
    assert load_model(artifact, device="cpu").metrics["epoch"] == 1


def test_cached_gradients_are_refused_where_they_cannot_work(
    tiny_config: TrainConfig, tiny_catalog, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="grad_cache_chunk works for schemes"):
        parse_config({"scheme": "corrnet", "optim": {"grad_cache_chunk": 8}}, "t")
    two_ranks = training.distributed.DistInfo(rank=0, world_size=2, local_rank=0)
    monkeypatch.setattr(training.loop, "init_distributed", lambda device: two_ranks)
    monkeypatch.setattr(training.loop, "cleanup", lambda info: None)
    config = replace(tiny_config, optim=replace(tiny_config.optim, grad_cache_chunk=4))
    with pytest.raises(ConfigError, match="under torchrun each rank"):
        train(config, tiny_catalog(64), tmp_path / "run", device="cpu", progress=False)
