"""training.losses against independent float64 loop references, gradchecks, behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training.losses import (
    CMPCClassifier,
    CorrNetOutputs,
    cmpc_loss,
    cmpm_loss,
    contrastive_loss,
    corrnet_loss,
)

REL_TOL = 1e-6
# Repeated identities, including one of size 3, so row-sum and L2 normalisation differ.
LABELS = [3, 0, 3, 1, 2, 0, 3, 4]


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _t(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def _labels(values: list[int]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int64)


def _assert_close(got: torch.Tensor, want: float) -> None:
    assert abs(got.item() - want) <= REL_TOL * abs(want), (got.item(), want)


def _norm(v: list[float]) -> float:
    return math.sqrt(sum(c * c for c in v))


def _dot(u: list[float], v: list[float]) -> float:
    return sum(a * b for a, b in zip(u, v))


# ---------------------------------------------------------------- references (loops)


def ref_cmpm(x, z, labels, *, scale=1.0, eps=1e-8, q_norm="sum") -> float:
    n = len(labels)

    def one_direction(src, tgt) -> float:
        total = 0.0
        for i in range(n):
            logits = [scale * _dot(src[i], tgt[j]) / _norm(tgt[j]) for j in range(n)]
            top = max(logits)
            log_z = top + math.log(sum(math.exp(v - top) for v in logits))
            y = [1.0 if labels[i] == labels[j] else 0.0 for j in range(n)]
            denom = sum(y) if q_norm == "sum" else math.sqrt(sum(v * v for v in y))
            for j in range(n):
                log_p = logits[j] - log_z
                total += math.exp(log_p) * (log_p - math.log(y[j] / denom + eps))
        return total / n

    return one_direction(x.tolist(), z.tolist()) + one_direction(z.tolist(), x.tolist())


def ref_cmpc(x, z, labels, w) -> float:
    x, z, w = x.tolist(), z.tolist(), w.tolist()
    dim, n_cls = len(w), len(w[0])
    cols = [[w[d][c] for d in range(dim)] for c in range(n_cls)]
    total = 0.0
    for i, label in enumerate(labels):
        for src, tgt in ((x[i], z[i]), (z[i], x[i])):
            unit = [c / _norm(tgt) for c in tgt]
            length = _dot(src, unit)
            proj = [length * c for c in unit]
            logits = [_dot(proj, col) / _norm(col) for col in cols]
            log_z = math.log(sum(math.exp(v) for v in logits))
            total += log_z - logits[label]
    return total / len(labels)


def ref_contrastive(x, z, labels, margin) -> float:
    x, z = x.tolist(), z.tolist()
    pos_sum = neg_sum = 0.0
    n_pos = n_neg = 0
    for i in range(len(labels)):
        for j in range(len(labels)):
            d = math.sqrt(sum((a - b) ** 2 for a, b in zip(x[i], z[j])))
            if labels[i] == labels[j]:
                pos_sum += d * d
                n_pos += 1
            else:
                neg_sum += max(0.0, margin - d) ** 2
                n_neg += 1
    return pos_sum / n_pos + (neg_sum / n_neg if n_neg else 0.0)


def ref_corrnet(xv, tv, recons, hx, hz, lam, eps=1e-8) -> float:
    n = len(xv)
    loss = 0.0
    for image_recon, text_recon in recons:
        for view, rec in ((xv, image_recon), (tv, text_recon)):
            for i in range(n):
                loss += sum((v - r) ** 2 for v, r in zip(view[i], rec[i])) / n
    corr = 0.0
    for k in range(len(hx[0])):
        mx = sum(hx[i][k] for i in range(n)) / n
        mz = sum(hz[i][k] for i in range(n)) / n
        num = sum((hx[i][k] - mx) * (hz[i][k] - mz) for i in range(n))
        vx = sum((hx[i][k] - mx) ** 2 for i in range(n))
        vz = sum((hz[i][k] - mz) ** 2 for i in range(n))
        corr += num / (math.sqrt(vx + eps) * math.sqrt(vz + eps))
    return loss - lam * corr


# ---------------------------------------------------------------- CMPM


@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_cmpm_matches_loop_reference(scale: float) -> None:
    rng = _rng(1)
    x, z = rng.normal(size=(8, 5)) * 2.0, rng.normal(size=(8, 5))
    got = cmpm_loss(_t(x), _t(z), _labels(LABELS), scale=scale)
    _assert_close(got, ref_cmpm(x, z, LABELS, scale=scale))


def test_cmpm_q_is_normalised_by_row_sum_not_l2_norm() -> None:
    rng = _rng(2)
    x, z = rng.normal(size=(8, 4)), rng.normal(size=(8, 4))
    by_sum = ref_cmpm(x, z, LABELS, q_norm="sum")
    by_l2 = ref_cmpm(x, z, LABELS, q_norm="l2")
    # The log(eps) terms of non-matches dominate both, but the gap is ~1e4 x the tolerance.
    assert abs(by_sum - by_l2) > 1e3 * REL_TOL * abs(by_sum)
    _assert_close(cmpm_loss(_t(x), _t(z), _labels(LABELS)), by_sum)


def test_cmpm_gradcheck() -> None:
    rng = _rng(3)
    x, z = _t(rng.normal(size=(4, 3)), True), _t(rng.normal(size=(4, 3)), True)
    labels = _labels([0, 1, 0, 2])
    assert torch.autograd.gradcheck(lambda a, b: cmpm_loss(a, b, labels), (x, z))


def test_cmpm_lower_for_aligned_pairs_than_random() -> None:
    rng = _rng(4)
    image = rng.normal(size=(16, 32))
    image *= 5.0 / np.linalg.norm(image, axis=1, keepdims=True)
    labels = _labels(list(range(16)))
    aligned = cmpm_loss(_t(image), _t(image), labels)
    shuffled = cmpm_loss(_t(image), _t(rng.permutation(image)), labels)
    unrelated = cmpm_loss(_t(image), _t(rng.normal(size=(16, 32))), labels)
    assert aligned < 0.5 * shuffled
    assert aligned < 0.5 * unrelated


def test_cmpm_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="labels must be"):
        cmpm_loss(torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        cmpm_loss(torch.zeros(4, 3), torch.zeros(4, 2), torch.zeros(4, dtype=torch.int64))


# ---------------------------------------------------------------- CMPC


def test_cmpc_matches_loop_reference() -> None:
    rng = _rng(5)
    x, z, w = rng.normal(size=(8, 5)), rng.normal(size=(8, 5)), rng.normal(size=(5, 6))
    got = cmpc_loss(_t(x), _t(z), _labels(LABELS), _t(w))
    _assert_close(got, ref_cmpc(x, z, LABELS, w))


def test_cmpc_gradcheck() -> None:
    rng = _rng(6)
    x, z = _t(rng.normal(size=(4, 3)), True), _t(rng.normal(size=(4, 3)), True)
    w = _t(rng.normal(size=(3, 3)), True)
    labels = _labels([0, 1, 0, 2])
    assert torch.autograd.gradcheck(lambda a, b, c: cmpc_loss(a, b, labels, c), (x, z, w))


def test_cmpc_classifier_uses_its_weight_and_trains_it() -> None:
    torch.manual_seed(0)
    clf = CMPCClassifier(embed_dim=5, num_identities=6).double()
    assert clf.weight.shape == (5, 6)
    x, z = torch.randn(8, 5, dtype=torch.float64), torch.randn(8, 5, dtype=torch.float64)
    loss = clf(x, z, _labels(LABELS))
    _assert_close(loss, ref_cmpc(x.numpy(), z.numpy(), LABELS, clf.weight.detach().numpy()))
    loss.backward()
    assert clf.weight.grad is not None and clf.weight.grad.abs().sum() > 0


def test_cmpc_rejects_label_outside_classifier() -> None:
    clf = CMPCClassifier(embed_dim=3, num_identities=2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        clf(torch.randn(2, 3), torch.randn(2, 3), _labels([0, 2]))


# ---------------------------------------------------------------- contrastive


@pytest.mark.parametrize("margin", [1.0, 4.0])
def test_contrastive_matches_loop_reference(margin: float) -> None:
    rng = _rng(7)
    x, z = rng.normal(size=(8, 5)), rng.normal(size=(8, 5))
    got = contrastive_loss(_t(x), _t(z), _labels(LABELS), margin=margin)
    _assert_close(got, ref_contrastive(x, z, LABELS, margin))


def test_contrastive_without_negatives_is_positive_term_only() -> None:
    rng = _rng(8)
    x, z = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    got = contrastive_loss(_t(x), _t(z), _labels([1, 1, 1]))
    _assert_close(got, ref_contrastive(x, z, [1, 1, 1], 1.0))


def test_contrastive_gradcheck() -> None:
    rng = _rng(9)
    x, z = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    labels = _labels([0, 1, 0, 2])
    # A margin between the distances keeps some negatives inside the hinge, some outside,
    # and none at its kink.
    d = np.linalg.norm(x[:, None] - z[None], axis=2)
    margin = float(np.median(d)) + 1e-3
    assert np.abs(d - margin).min() > 1e-3
    xt, zt = _t(x, True), _t(z, True)
    assert torch.autograd.gradcheck(
        lambda a, b: contrastive_loss(a, b, labels, margin=margin), (xt, zt)
    )


def test_contrastive_is_zero_when_perfectly_matched() -> None:
    labels = [0, 1, 0, 2, 1]
    # One point per identity, each pair of identities 3 * sqrt(2) > margin apart.
    per_id = 3.0 * np.eye(4)[:3]
    emb = per_id[labels]
    perfect = contrastive_loss(_t(emb), _t(emb), _labels(labels), margin=1.0)
    assert perfect.item() == pytest.approx(0.0, abs=1e-12)
    noisy = emb + _rng(10).normal(scale=0.1, size=emb.shape)
    assert contrastive_loss(_t(emb), _t(noisy), _labels(labels), margin=1.0) > 1e-3


# ---------------------------------------------------------------- CorrNet


def _corrnet_inputs(seed: int, n: int, d_img: int, d_txt: int, k: int):
    rng = _rng(seed)
    xv, tv = rng.normal(size=(n, d_img)), rng.normal(size=(n, d_txt))
    recons = [(rng.normal(size=(n, d_img)), rng.normal(size=(n, d_txt))) for _ in range(3)]
    hx, hz = rng.normal(size=(n, k)), rng.normal(size=(n, k))
    hz[:, 0] += 2.0 * hx[:, 0]  # one strongly correlated unit, so corr is far from 0
    return xv, tv, recons, hx, hz


def _outputs(recons, hx, hz, grad: bool = False) -> tuple[CorrNetOutputs, list[torch.Tensor]]:
    flat = [_t(a, grad) for pair in recons for a in pair] + [_t(hx, grad), _t(hz, grad)]
    return _outputs_from(flat), flat


def _outputs_from(flat) -> CorrNetOutputs:
    return CorrNetOutputs(
        h_image=flat[6],
        h_text=flat[7],
        recon_from_both=(flat[0], flat[1]),
        recon_from_image=(flat[2], flat[3]),
        recon_from_text=(flat[4], flat[5]),
    )


@pytest.mark.parametrize("lam", [0.02, 5.0])
def test_corrnet_matches_loop_reference(lam: float) -> None:
    xv, tv, recons, hx, hz = _corrnet_inputs(11, n=8, d_img=5, d_txt=4, k=3)
    outputs, _ = _outputs(recons, hx, hz)
    got = corrnet_loss(_t(xv), _t(tv), outputs, lam=lam)
    want = ref_corrnet(
        xv.tolist(),
        tv.tolist(),
        [(a.tolist(), b.tolist()) for a, b in recons],
        hx.tolist(),
        hz.tolist(),
        lam,
    )
    _assert_close(got, want)


def test_corrnet_gradcheck() -> None:
    xv, tv, recons, hx, hz = _corrnet_inputs(12, n=4, d_img=3, d_txt=2, k=3)
    _, flat = _outputs(recons, hx, hz, grad=True)
    inputs = (_t(xv, True), _t(tv, True), *flat)

    def fn(a, b, *rest):
        return corrnet_loss(a, b, _outputs_from(rest), lam=0.5)

    assert torch.autograd.gradcheck(fn, inputs)


def test_corrnet_rejects_reconstruction_of_wrong_shape() -> None:
    xv, tv, recons, hx, hz = _corrnet_inputs(13, n=4, d_img=3, d_txt=2, k=2)
    recons[1] = (recons[1][1], recons[1][0])  # views swapped
    outputs, _ = _outputs(recons, hx, hz)
    with pytest.raises(ValueError, match="reconstruction"):
        corrnet_loss(_t(xv), _t(tv), outputs)
