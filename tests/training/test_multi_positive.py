"""training.losses.multi_positive_loss against a float64 loop reference, gradcheck, and
its relation to CMPM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training.losses import cmpm_loss, multi_positive_loss

# 3 queries x 6 photos; photo 5 answers no query (its attribute is unknown).
POSITIVES = [
    [1, 0, 1, 0, 0, 0],
    [0, 1, 0, 0, 1, 0],
    [0, 0, 0, 1, 0, 0],
]


def _kl_rows(
    src: list[list[float]], tgt: list[list[float]], y: list[list[int]], scale: float, eps: float
) -> float:
    """mean over rows i of sum_j p_ij (log p_ij - log(q_ij + eps)), p = softmax of
    scale * src_i . tgt_j / |tgt_j|, q = y_i / sum(y_i)."""
    total = 0.0
    for i, row in enumerate(src):
        logits = [
            scale * sum(a * b for a, b in zip(row, t)) / math.sqrt(sum(b * b for b in t))
            for t in tgt
        ]
        top = max(logits)
        log_z = top + math.log(sum(math.exp(v - top) for v in logits))
        mass = sum(y[i])
        for j, value in enumerate(logits):
            log_p = value - log_z
            total += math.exp(log_p) * (log_p - math.log(y[i][j] / mass + eps))
    return total / len(src)


def ref_multi_positive(
    x: np.ndarray, z: np.ndarray, positives: list[list[int]], scale: float = 1.0, eps: float = 1e-8
) -> float:
    images, queries = x.tolist(), z.tolist()
    q2i = _kl_rows(queries, images, positives, scale, eps)
    columns = [[row[j] for row in positives] for j in range(len(images))]
    answered = [j for j, col in enumerate(columns) if sum(col)]
    i2q = _kl_rows(
        [images[j] for j in answered], queries, [columns[j] for j in answered], scale, eps
    )
    return q2i + i2q


def _t(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_matches_the_loop_reference(scale: float) -> None:
    rng = np.random.default_rng(0)
    x, z = rng.normal(size=(6, 4)) * 2.0, rng.normal(size=(3, 4))
    got = multi_positive_loss(_t(x), _t(z), torch.tensor(POSITIVES, dtype=torch.bool), scale=scale)
    want = ref_multi_positive(x, z, POSITIVES, scale=scale)
    assert got.item() == pytest.approx(want, rel=1e-9)


def test_gradcheck() -> None:
    rng = np.random.default_rng(1)
    x, z = _t(rng.normal(size=(6, 3)), True), _t(rng.normal(size=(3, 3)), True)
    positives = torch.tensor(POSITIVES, dtype=torch.bool)
    assert torch.autograd.gradcheck(lambda a, b: multi_positive_loss(a, b, positives), (x, z))


def test_with_one_query_per_photo_and_label_positives_it_is_cmpm() -> None:
    rng = np.random.default_rng(2)
    labels = torch.tensor([3, 0, 3, 1, 2, 0, 3, 4])
    x, z = _t(rng.normal(size=(8, 5))), _t(rng.normal(size=(8, 5)))
    positives = labels[:, None] == labels[None, :]
    assert multi_positive_loss(x, z, positives).item() == pytest.approx(
        cmpm_loss(x, z, labels).item(), rel=1e-12
    )


def test_lower_when_queries_point_at_all_their_positives() -> None:
    photos = torch.eye(4, dtype=torch.float64) * 5
    positives = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.bool)
    towards_positives = torch.stack([photos[0] + photos[1], photos[2] + photos[3]])
    towards_one_negative = torch.stack([photos[2], photos[0]])
    assert multi_positive_loss(photos, towards_positives, positives) < multi_positive_loss(
        photos, towards_one_negative, positives
    )


def test_bad_shapes_and_queries_without_positives_are_clear_errors() -> None:
    x, z = torch.zeros(4, 3), torch.ones(2, 3)
    with pytest.raises(ValueError, match=r"positives must be \(U, B\) = \(2, 4\)"):
        multi_positive_loss(x, z, torch.ones(4, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="query_emb"):
        multi_positive_loss(x, torch.ones(2, 5), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one positive"):
        multi_positive_loss(x, z, torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool))
