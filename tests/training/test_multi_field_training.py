"""A tiny model trained with an articleType field answers "Tshirts" with T-shirts.

A direct full-batch loop over what training.loop runs each step (batch_queries, the
model's forward with the queries as extra texts, multi_field_loss), on 64 sample
products of the 4 commonest article types; success is measured through the inference
API and the category task of training.evaluate.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import torch

from models import ModelConfig, build_model, open_image, read_catalog
from training.evaluate import evaluate_categories
from training.objectives import multi_field_loss
from training.queries import all_wordings, batch_queries

TYPES, PER_TYPE, MAX_STEPS = 4, 16, 300
FIELDS = {"articleType": 1.0}


def test_a_tiny_model_ranks_the_right_article_type_first(
    sample_catalog: Path, tiny_model_config: ModelConfig
) -> None:
    products = read_catalog(sample_catalog).products
    common = [
        v for v, _ in Counter(p.attributes["articleType"] for p in products).most_common(TYPES)
    ]
    batch = [
        p
        for v in common
        for p in [q for q in products if q.attributes["articleType"] == v][:PER_TYPE]
    ]
    torch.manual_seed(0)
    model = build_model(tiny_model_config, all_wordings(list(FIELDS), batch))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    pixels = model.transform.batch([open_image(p.image) for p in batch])
    titles = model.tokenize([p.text for p in batch])
    rng = random.Random(0)

    result: dict = {}
    for step in range(1, MAX_STEPS + 1):
        model.train()
        queries = batch_queries(FIELDS, batch, rng)
        outputs = model(pixels, titles, extra_tokens=[model.tokenize(q.texts) for q in queries])
        loss = multi_field_loss(outputs[2], queries, outputs[4:], FIELDS)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 0:
            photos = model.encode_images([p.image for p in batch])
            result = evaluate_categories(
                model, batch, batch, gallery_embeddings=photos, fields=["articleType"]
            )
            if result["articleType"]["P@1"] == 1.0:
                break
    assert result["articleType"]["queries"] == TYPES
    assert result["articleType"]["P@1"] == 1.0, f"{common}: {result} after {step} steps"
