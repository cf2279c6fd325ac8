"""A tiny Deep CMPL model learns 32 image-title pairs by heart: R@1 = 1.0 both ways.

A direct full-batch loop (the model's training forward + CMPM) on 32 sample products
with distinct titles; success is measured through the inference API (encode_*).
"""

from __future__ import annotations

import numpy as np
import torch

from models import ModelConfig, build_model, open_image, read_catalog
from training.losses import cmpm_loss

PAIRS = 32
MAX_STEPS = 300  # seeds 0-4 all reach R@1 = 1.0 within 100 steps


def _r_at_1(queries: np.ndarray, gallery: np.ndarray) -> float:
    """Pair i is correct when query i's best gallery item is item i."""
    return float(np.mean(np.argmax(queries @ gallery.T, axis=1) == np.arange(len(queries))))


def test_overfits_32_pairs_to_perfect_recall(tiny_catalog, tiny_model_config: ModelConfig) -> None:
    products = read_catalog(tiny_catalog(PAIRS, distinct_titles=True)).products
    titles = [p.text for p in products]
    assert len(set(titles)) == PAIRS
    torch.manual_seed(0)
    model = build_model(tiny_model_config, titles)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    pixels = model.transform.batch([open_image(p.image) for p in products])
    tokens = model.tokenize(titles)
    labels = torch.arange(PAIRS)  # distinct titles: one identity per pair

    recall = (0.0, 0.0)
    for step in range(1, MAX_STEPS + 1):
        model.train()
        _, _, image_emb, text_emb = model(pixels, tokens)
        loss = cmpm_loss(image_emb, text_emb, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 0:
            images = model.encode_images([p.image for p in products])
            texts = model.encode_texts(titles)
            recall = (_r_at_1(texts, images), _r_at_1(images, texts))
            if recall == (1.0, 1.0):
                break
    assert recall == (1.0, 1.0), (
        f"text->image R@1 {recall[0]}, image->text R@1 {recall[1]} after {step} steps"
    )
