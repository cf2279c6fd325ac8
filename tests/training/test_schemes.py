"""The Siamese and Correlational network schemes: wired to training.losses, able to
overfit 16 pairs, trained by training.loop on frozen towers, saved and loaded as
ordinary artifacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models import (
    JointModel,
    Product,
    build_model,
    load_model,
    open_image,
    read_catalog,
    save_artifact,
)
from training.config import SCHEMES, TrainConfig, load_config, parse_config
from training.loop import train
from training.losses import CorrNetOutputs, contrastive_loss, corrnet_loss
from training.objectives import OBJECTIVES, CorrNetObjective, SiameseObjective, build_objective

PAIRS = 16
# The seed configs' heads, shrunk (Siamese 500 -> 512; CorrNet 300 -> 200 -> 50).
HEADS = {
    "siamese": ({"kind": "mlp", "hidden": [64], "dropout": 0.5, "input_norm": True}, 32),
    "corrnet": (
        {
            "kind": "mlp",
            "hidden": [48, 32],
            "dropout": 0.0,
            "input_norm": True,
            "output_norm": True,
        },
        16,
    ),
}
# Seeds 0-7 of both schemes first reach R@1 = 1.0 within 100 steps.
MAX_STEPS = 400


def scheme_config(scheme: str, *, epochs: int = 2, **loss: float) -> TrainConfig:
    """tiny_cnn + bilstm towers, frozen for every epoch as in the seed-* configs."""
    head, embed_dim = HEADS[scheme]
    return parse_config(
        {
            "scheme": scheme,
            "seed": 0,
            "model": {
                "embed_dim": embed_dim,
                "head": head,
                "image": {"name": "tiny_cnn", "pretrained": False, "channels": 8},
                "text": {"name": "bilstm", "word_dim": 32, "hidden_dim": 32},
                "preprocess": {"height": 32, "width": 24},
            },
            "loss": loss,
            "optim": {
                "epochs": epochs,
                "batch_size": PAIRS,
                "lr": 3e-3,
                "freeze_towers_epochs": epochs,
                "warmup_steps": 1,
            },
            "data": {"val_fraction": 0.0, "test_fraction": 0.0},
        },
        f"tiny-{scheme}",
    )


@pytest.fixture
def pair_catalog(tiny_catalog) -> Path:
    """A catalogue of 16 sample products with distinct titles."""
    return tiny_catalog(PAIRS, distinct_titles=True)


@pytest.fixture
def pairs(pair_catalog: Path) -> list[Product]:
    products = read_catalog(pair_catalog).products
    assert len({p.text for p in products}) == PAIRS
    return products


def _recall_at_1(model: JointModel, products: list[Product]) -> tuple[float, float]:
    """(text->image, image->text) R@1 through the inference API; pair i matches item i."""
    images = model.encode_images([p.image for p in products])
    texts = model.encode_texts([p.text for p in products])
    truth = np.arange(len(products))
    return (
        float(np.mean((texts @ images.T).argmax(axis=1) == truth)),
        float(np.mean((images @ texts.T).argmax(axis=1) == truth)),
    )


def _overfit(
    config: TrainConfig, products: list[Product]
) -> tuple[JointModel, tuple[float, float], int]:
    """A seeded full-batch loop: towers frozen (feature extractors), heads and the
    objective's own parameters trained; stops once R@1 = 1.0 both ways."""
    torch.manual_seed(config.seed)
    model = build_model(config.model, [p.text for p in products])
    objective = build_objective(
        config,
        PAIRS,
        image_dim=model.image_tower.feature_dim,
        text_dim=model.text_tower.feature_dim,
    )
    for tower in (model.image_tower, model.text_tower):
        tower.requires_grad_(False)
    trained = [p for p in [*model.parameters(), *objective.parameters()] if p.requires_grad]
    optimizer = torch.optim.Adam(trained, lr=config.optim.lr)
    pixels = model.transform.batch([open_image(p.image) for p in products])
    tokens = model.tokenize([p.text for p in products])
    labels = torch.arange(PAIRS)  # distinct titles: one identity each
    recall = (0.0, 0.0)
    for step in range(1, MAX_STEPS + 1):
        model.train()
        loss = objective(model(pixels, tokens), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 0:
            recall = _recall_at_1(model, products)
            if recall == (1.0, 1.0):
                break
    return model, recall, step


def test_every_scheme_has_an_objective() -> None:
    assert set(OBJECTIVES) == set(SCHEMES)


@pytest.mark.parametrize("scheme", ["siamese", "corrnet"])
def test_overfits_16_pairs_and_round_trips_as_an_artifact(scheme, pairs, tmp_path) -> None:
    config = scheme_config(scheme)
    model, recall, step = _overfit(config, pairs)
    assert recall == (1.0, 1.0), f"text->image, image->text R@1 {recall} after {step} steps"

    save_artifact(model, tmp_path / scheme)
    loaded = load_model(tmp_path / scheme, device="cpu")
    assert loaded.config.scheme == scheme
    images = loaded.encode_images([p.image for p in pairs])
    texts = loaded.encode_texts([p.text for p in pairs])
    for embeddings in (images, texts):
        assert embeddings.shape == (PAIRS, config.model.embed_dim)
        assert embeddings.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(images, model.encode_images([p.image for p in pairs]), atol=1e-6)
    np.testing.assert_allclose(texts, model.encode_texts([p.text for p in pairs]), atol=1e-6)
    assert _recall_at_1(loaded, pairs) == (1.0, 1.0)


def _random_outputs(*, batch: int = 6, image_dim: int = 12, text_dim: int = 7, embed_dim: int = 16):
    """Stand-ins for JointModel.forward: features (B, Fi), (B, Ft), embeddings (B, D)."""
    generator = torch.Generator().manual_seed(0)
    shapes = ((batch, image_dim), (batch, text_dim), (batch, embed_dim), (batch, embed_dim))
    return tuple(torch.randn(shape, generator=generator, requires_grad=True) for shape in shapes)


def test_siamese_objective_is_the_contrastive_loss_on_unit_embeddings() -> None:
    config = scheme_config("siamese", margin=0.7)
    objective = build_objective(config, 4, image_dim=12, text_dim=7)
    assert isinstance(objective, SiameseObjective)
    outputs = _random_outputs(embed_dim=config.model.embed_dim)
    _, _, image_emb, text_emb = outputs
    labels = torch.tensor([0, 1, 0, 2, 3, 1])  # same-title pairs are positives
    want = contrastive_loss(
        F.normalize(image_emb, dim=1), F.normalize(text_emb, dim=1), labels, margin=0.7
    )
    torch.testing.assert_close(objective(outputs, labels), want, rtol=0, atol=0)
    assert not list(objective.parameters())


@pytest.mark.parametrize("standardise", [False, True])
def test_corrnet_objective_is_the_corrnet_loss_on_its_decoders(standardise) -> None:
    config = scheme_config("corrnet", corr_lambda=0.5)
    if not standardise:
        config = parse_config(
            {
                "scheme": "corrnet",
                "model": {"embed_dim": 16, "head": {"kind": "mlp", "hidden": [48, 32]}},
                "loss": {"corr_lambda": 0.5},
            },
            "raw-corrnet",
        )
    objective = build_objective(config, 4, image_dim=12, text_dim=7)
    assert isinstance(objective, CorrNetObjective)
    # The decoders mirror the encoders: K = 16 -> 32 -> 48 -> the view's feature size.
    for decoder, view_dim in ((objective.image_decoder, 12), (objective.text_decoder, 7)):
        sizes = [(m.in_features, m.out_features) for m in decoder if isinstance(m, torch.nn.Linear)]
        assert sizes == [(16, 32), (32, 48), (48, view_dim)]
    outputs = _random_outputs(embed_dim=16)
    image_features, text_features, h_image, h_text = outputs

    def decode(h):
        return objective.image_decoder(h), objective.text_decoder(h)

    def view(features):  # what the heads' input BatchNorm1d(affine=False) sees in training
        if not standardise:
            return features
        centred = features - features.mean(dim=0)
        return centred / (centred.pow(2).mean(dim=0) + 1e-5).sqrt()

    reference = CorrNetOutputs(
        h_image=h_image,
        h_text=h_text,
        recon_from_both=decode(h_image + h_text),
        recon_from_image=decode(h_image),
        recon_from_text=decode(h_text),
    )
    want = corrnet_loss(view(image_features), view(text_features), reference, lam=0.5)
    got = objective(outputs, torch.arange(6))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    got.backward()
    # The views are reconstruction targets only: no gradient reaches the towers'
    # features except through the encoders (h_image, h_text).
    assert image_features.grad is None and text_features.grad is None
    assert h_image.grad is not None and h_text.grad is not None


@pytest.mark.parametrize("scheme", ["siamese", "corrnet"])
def test_training_loop_trains_the_heads_on_frozen_towers(
    scheme, pair_catalog, pairs, tmp_path
) -> None:
    config = scheme_config(scheme, epochs=2)
    artifact = train(config, pair_catalog, tmp_path / "run", device="cpu", progress=False)
    model = load_model(artifact, device="cpu")
    assert model.config.scheme == scheme and model.embed_dim == config.model.embed_dim
    embeddings = model.encode_texts([p.text for p in pairs])
    assert embeddings.shape == (PAIRS, config.model.embed_dim)
    # freeze_towers_epochs = epochs: the towers are still the seeded initial ones (the
    # loop seeds, then builds the model), while every head weight has moved.
    torch.manual_seed(config.seed)
    initial = build_model(config.model, [p.text for p in pairs]).state_dict()
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        assert torch.equal(value, initial[key]) == key.startswith(
            ("image_tower.", "text_tower.")
        ), key


@pytest.mark.parametrize("name", ["seed-siamese", "seed-corrnet"])
def test_seed_configs_train_heads_on_frozen_pretrained_towers(name) -> None:
    config = load_config(name)
    assert config.scheme == name.removeprefix("seed-")
    assert (config.model.image.name, config.model.text.name) == ("efficientnet-lite0", "minilm")
    assert config.model.image.pretrained and config.model.text.pretrained
    assert config.optim.freeze_towers_epochs >= config.optim.epochs  # towers never train
    head = config.model.head
    if config.scheme == "siamese":
        assert (head.kind, head.hidden, config.model.embed_dim, head.dropout) == (
            "mlp",
            (500,),
            512,
            0.5,
        )
        assert config.loss.margin == 1.0
    else:
        assert (head.kind, head.hidden, config.model.embed_dim) == ("mlp", (300, 200), 50)
        assert config.loss.corr_lambda == 0.02
