"""CMPC weight imprinting: each class starts as its title's unit text embedding."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from models import build_model, load_model, read_catalog
from training.checkpoint import CHECKPOINT
from training.config import TrainConfig
from training.data import SplitSpec, identity_labels
from training.imprint import imprint_cmpc
from training.loop import train
from training.losses import CMPCClassifier, cmpc_loss

TITLES = ["Navy Blue Checked Shirt", "Red Kurta", "Black Sports Shoes", "White Tshirt"]


def test_each_class_weight_is_its_titles_unit_text_embedding(tiny_config: TrainConfig) -> None:
    model = build_model(tiny_config.model, TITLES)
    model.train()
    classifier = CMPCClassifier(tiny_config.model.embed_dim, len(TITLES))
    imprint_cmpc(classifier, model, TITLES)
    assert model.training  # imprinting encodes in eval mode and gives the mode back
    np.testing.assert_allclose(
        classifier.weight.detach().T.numpy(), model.encode_texts(TITLES), atol=1e-6
    )


def test_an_imprinted_classifier_names_each_title_s_own_class(tiny_config: TrainConfig) -> None:
    # With a photo embedding along its title's, CMPC's logits peak at the title's class
    # at once, where a random classifier is at chance: the loss starts lower.
    model = build_model(tiny_config.model, TITLES)
    text = torch.from_numpy(model.encode_texts(TITLES)) * 5
    image = text + 0.01 * torch.randn_like(text)
    labels = torch.arange(len(TITLES))
    imprinted = CMPCClassifier(tiny_config.model.embed_dim, len(TITLES))
    imprint_cmpc(imprinted, model, TITLES)
    logits = text @ imprinted.weight.detach()
    assert logits.argmax(dim=1).tolist() == labels.tolist()
    random = CMPCClassifier(tiny_config.model.embed_dim, len(TITLES))
    assert cmpc_loss(image, text, labels, imprinted.weight) < cmpc_loss(
        image, text, labels, random.weight
    )


def test_one_title_per_identity_is_required(tiny_config: TrainConfig) -> None:
    model = build_model(tiny_config.model, TITLES)
    classifier = CMPCClassifier(tiny_config.model.embed_dim, len(TITLES) + 1)
    with pytest.raises(ValueError, match="4 titles for a classifier of 5 identities"):
        imprint_cmpc(classifier, model, TITLES)


def test_a_run_starts_its_classifier_from_the_start_artifact_s_titles(
    tiny_config: TrainConfig, tiny_catalog, tmp_path: Path
) -> None:
    catalog = tiny_catalog(64)
    one_epoch = replace(tiny_config, optim=replace(tiny_config.optim, epochs=1))
    first = train(one_epoch, catalog, tmp_path / "first", device="cpu", progress=False)
    # At lr 0 nothing moves, so the checkpoint holds the classifier as it started.
    frozen = replace(
        one_epoch,
        loss=replace(one_epoch.loss, cmpc_init="text"),
        optim=replace(one_epoch.optim, lr=0.0, tower_lr=0.0),
    )
    train(frozen, catalog, tmp_path / "again", init=first, device="cpu", progress=False)
    weight = torch.load(tmp_path / "again" / CHECKPOINT, weights_only=False)["objective"][
        "cmpc.weight"
    ]
    splits = SplitSpec.from_metrics(load_model(first).metrics).split(read_catalog(catalog).products)
    _, identities = identity_labels(splits.train)
    want = load_model(first, device="cpu").encode_texts(list(identities))
    np.testing.assert_allclose(weight.T.numpy(), want, atol=1e-5)
