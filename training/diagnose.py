"""Where a joint embedding falls short: which product attributes each side encodes.

A catalogue search for "Puma Men Black Track Jacket" can only rank the right photo in
the top 10 if the image embedding tells gender, article type, colour and brand apart
about as well as the text embedding does. Two measurements say which side lags:

- :func:`attribute_probe`: a linear softmax probe per attribute, fitted on one set of
  embeddings and scored on another (held-out products);
- :func:`retrieved_agreement`: the share of the top-k retrieved items that agree with
  the query on each attribute.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from models import Product

BRAND = "brand"  # not a catalogue column: the title's first word stands in for it


def attribute_value(product: Product, name: str) -> str:
    if name == BRAND:
        words = product.text.split()
        return words[0].lower() if words else ""
    return product.attributes.get(name, "")


def attribute_probe(
    train_x: np.ndarray,
    train_y: Sequence[str],
    test_x: np.ndarray,
    test_y: Sequence[str],
    *,
    steps: int = 300,
    lr: float = 0.01,
    seed: int = 0,
) -> float:
    """Accuracy on (test_x, test_y) of a linear softmax classifier fitted on the train
    pair (features standardised with the train statistics). A test label never seen in
    training counts as a miss."""
    vocab = {label: index for index, label in enumerate(sorted(set(train_y)))}
    x = torch.as_tensor(train_x, dtype=torch.float32)
    mean, std = x.mean(0), x.std(0) + 1e-6
    x = (x - mean) / std
    y = torch.tensor([vocab[label] for label in train_y])
    generator = torch.Generator().manual_seed(seed)
    weight = torch.zeros(x.shape[1], len(vocab), requires_grad=True)
    bias = torch.zeros(len(vocab), requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=lr)
    batch = min(4096, len(y))
    for _ in range(steps):
        rows = torch.randint(0, len(y), (batch,), generator=generator)
        loss = F.cross_entropy(x[rows] @ weight + bias, y[rows]) + 1e-4 * weight.square().sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        test = (torch.as_tensor(test_x, dtype=torch.float32) - mean) / std
        predicted = (test @ weight + bias).argmax(1).tolist()
    labels = sorted(vocab, key=vocab.__getitem__)
    return float(np.mean([labels[p] == t for p, t in zip(predicted, test_y, strict=True)]))


def majority_accuracy(train_y: Sequence[str], test_y: Sequence[str]) -> float:
    """What always answering the most common training label scores."""
    top = Counter(train_y).most_common(1)[0][0]
    return float(np.mean([label == top for label in test_y]))


def retrieved_agreement(
    scores: np.ndarray,
    query_values: Sequence[str],
    gallery_values: Sequence[str],
    *,
    k: int = 10,
) -> float:
    """Share of the top-k gallery items (by score, (Q, G)) whose value equals their query's."""
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    gallery = np.asarray(gallery_values, dtype=object)
    query = np.asarray(query_values, dtype=object)
    return float((gallery[top] == query[:, None]).mean())


def median_pool_size(
    queries: Sequence[Product], catalogue: Sequence[Product], names: Sequence[str]
) -> float:
    """Median over queries of how many catalogue products share all of `names` with it:
    the field a search must still tell apart once it gets those attributes right."""

    def key(product: Product) -> tuple[str, ...]:
        return tuple(attribute_value(product, name) for name in names)

    counts = Counter(key(product) for product in catalogue)
    return float(np.median([counts[key(query)] for query in queries]))
