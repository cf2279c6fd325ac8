"""Training losses for joint image-text embeddings.

Pure torch, no project imports, so every loss can be checked against a float64 reference
in isolation. Shapes: B is the batch size, D the joint embedding size, K the size of a
common (hidden) representation. ``labels`` are identity ids (B,) int64: two items with the
same label show the same product, so they count as matches, never as negatives.

- :func:`cmpm_loss`: Cross-Modal Projection Matching (Zhang & Lu, ECCV 2018).
- :func:`multi_positive_loss`: CMPM between U queries and B photos with any positive set.
- :func:`cmpc_loss` / :class:`CMPCClassifier`: Cross-Modal Projection Classification.
- :func:`contrastive_loss`: Siamese contrastive loss (Hadsell et al., CVPR 2006).
- :func:`corrnet_loss`: Correlational Neural Network (Chandar et al., Neural Comput. 2016).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CMPCClassifier",
    "CorrNetOutputs",
    "cmpc_loss",
    "cmpm_loss",
    "contrastive_loss",
    "corrnet_correlation",
    "corrnet_loss",
    "multi_positive_loss",
]


def _check_batch(image_emb: Tensor, text_emb: Tensor, labels: Tensor) -> None:
    if image_emb.ndim != 2 or image_emb.shape != text_emb.shape:
        raise ValueError(
            f"image_emb and text_emb must both be (B, D); got {tuple(image_emb.shape)} "
            f"and {tuple(text_emb.shape)}"
        )
    if labels.shape != (image_emb.shape[0],):
        raise ValueError(
            f"labels must be (B,) = ({image_emb.shape[0]},); got {tuple(labels.shape)}"
        )


def _same_label(labels: Tensor) -> Tensor:
    """(B,) -> (B, B) bool, True where two batch items share an identity."""
    return labels[:, None] == labels[None, :]


def _projection_kl(logits: Tensor, log_q: Tensor) -> Tensor:
    # log_softmax rather than log(softmax): p underflows to 0 for far-off pairs.
    log_p = F.log_softmax(logits, dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1).mean()


def cmpm_loss(
    image_emb: Tensor,
    text_emb: Tensor,
    labels: Tensor,
    *,
    eps: float = 1e-8,
    scale: float = 1.0,
) -> Tensor:
    """Cross-Modal Projection Matching loss, L_i2t + L_t2i.

    Args:
        image_emb: (B, D) raw image embeddings x (not normalised).
        text_emb: (B, D) raw text embeddings z (not normalised).
        labels: (B,) identity ids; y_ij = 1 where labels[i] == labels[j].
        eps: added to q before its log, so the log of a non-match is finite.
        scale: multiplies the projections (an inverse temperature); 1.0 is the paper.

    Returns:
        () scalar. With p_ij = softmax_j(scale * x_i . z_j/|z_j|) and
        q_ij = y_ij / sum_k y_ik, L_i2t = mean_i sum_j p_ij (log p_ij - log(q_ij + eps));
        L_t2i is the same with the modalities swapped.

    q is normalised by the row *sum*, as in the paper's equation: the released TensorFlow
    code divides by the row's L2 norm instead, which for an identity with n > 1 items in
    the batch makes q_ij = 1/sqrt(n), not a distribution.
    """
    _check_batch(image_emb, text_emb, labels)
    y = _same_label(labels).to(image_emb.dtype)
    # y is symmetric, so one q serves both directions.
    log_q = torch.log(y / y.sum(dim=1, keepdim=True) + eps)
    image_unit = F.normalize(image_emb, dim=1)
    text_unit = F.normalize(text_emb, dim=1)
    # Only the target side is normalised: the source's norm is free to sharpen p.
    i2t = _projection_kl(scale * image_emb @ text_unit.T, log_q)
    t2i = _projection_kl(scale * text_emb @ image_unit.T, log_q)
    return i2t + t2i


def multi_positive_loss(
    image_emb: Tensor,
    query_emb: Tensor,
    positives: Tensor,
    *,
    eps: float = 1e-8,
    scale: float = 1.0,
) -> Tensor:
    """CMPM between U queries and B photos when a query may match many photos.

    Args:
        image_emb: (B, D) raw image embeddings x.
        query_emb: (U, D) raw embeddings z of U distinct queries ("navy blue shirts").
        positives: (U, B) bool, True where photo j answers query u. Every photo that
            shares the query's attribute value is a positive, never a negative.
        eps, scale: as in :func:`cmpm_loss`.

    Returns:
        () scalar, L_q2i + L_i2q. L_q2i = mean_u KL(p_u || q_u) with
        p_uj = softmax_j(scale * z_u . x_j/|x_j|) and q_u = positives[u] / its sum;
        L_i2q = mean_j KL(p_j || q_j) over the photos with at least one positive query,
        with p_ju = softmax_u(scale * x_j . z_u/|z_u|), q_j = positives[:, j] / its sum.
        With U = B and positives[u, j] = (labels[u] == labels[j]) it equals cmpm_loss.
    """
    if image_emb.ndim != 2 or query_emb.ndim != 2 or image_emb.shape[1] != query_emb.shape[1]:
        raise ValueError(
            f"image_emb must be (B, D) and query_emb (U, D); got {tuple(image_emb.shape)} "
            f"and {tuple(query_emb.shape)}"
        )
    if positives.shape != (query_emb.shape[0], image_emb.shape[0]):
        raise ValueError(
            f"positives must be (U, B) = ({query_emb.shape[0]}, {image_emb.shape[0]}); "
            f"got {tuple(positives.shape)}"
        )
    y = positives.to(image_emb.dtype)
    if bool((y.sum(dim=1) == 0).any()):
        raise ValueError("every query needs at least one positive photo in the batch")
    log_q_rows = torch.log(y / y.sum(dim=1, keepdim=True) + eps)
    q2i = _projection_kl(scale * query_emb @ F.normalize(image_emb, dim=1).T, log_q_rows)
    answered = y.sum(dim=0) > 0  # a photo whose attribute is unknown answers no query
    y_cols = y[:, answered].T  # (B', U)
    log_q_cols = torch.log(y_cols / y_cols.sum(dim=1, keepdim=True) + eps)
    i2q = _projection_kl(scale * image_emb[answered] @ F.normalize(query_emb, dim=1).T, log_q_cols)
    return q2i + i2q


def cmpc_loss(image_emb: Tensor, text_emb: Tensor, labels: Tensor, weight: Tensor) -> Tensor:
    """Cross-Modal Projection Classification loss (norm-softmax), image + text terms.

    Args:
        image_emb: (B, D) raw image embeddings x.
        text_emb: (B, D) raw text embeddings z.
        labels: (B,) int64 identity ids in [0, num_identities).
        weight: (D, num_identities) classifier weights; columns are L2-normalised here.

    Returns:
        () scalar: CE(x_hat @ W_norm, labels) + CE(z_hat @ W_norm, labels), where
        x_hat_i = (x_i . z_i/|z_i|) z_i/|z_i| and z_hat_i = (z_i . x_i/|x_i|) x_i/|x_i|.
    """
    _check_batch(image_emb, text_emb, labels)
    if weight.ndim != 2 or weight.shape[0] != image_emb.shape[1]:
        raise ValueError(
            f"weight must be (D, num_identities) with D = {image_emb.shape[1]}; "
            f"got {tuple(weight.shape)}"
        )
    num_ids = weight.shape[1]
    # cross_entropy on CUDA dies with an opaque device assert on a bad label; fail clearly.
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_ids):
        raise ValueError(
            f"labels must lie in [0, {num_ids}); got range [{int(labels.min())}, "
            f"{int(labels.max())}]: build the classifier with num_identities > max label"
        )
    image_unit = F.normalize(image_emb, dim=1)
    text_unit = F.normalize(text_emb, dim=1)
    image_proj = (image_emb * text_unit).sum(dim=1, keepdim=True) * text_unit
    text_proj = (text_emb * image_unit).sum(dim=1, keepdim=True) * image_unit
    # Normalised weights and no bias: the logit depends on the projection's length and
    # angle alone, so one class cannot win by having a larger weight vector.
    w_unit = F.normalize(weight, dim=0)
    return F.cross_entropy(image_proj @ w_unit, labels) + F.cross_entropy(
        text_proj @ w_unit, labels
    )


class CMPCClassifier(nn.Module):
    """Holds the CMPC identity classifier W (D, num_identities), no bias.

    ``forward(image_emb, text_emb, labels)`` returns :func:`cmpc_loss` with this weight.
    The weight is trained with the encoders but is not part of the inference model.
    """

    def __init__(self, embed_dim: int, num_identities: int) -> None:
        super().__init__()
        if embed_dim < 1 or num_identities < 1:
            raise ValueError(
                f"embed_dim and num_identities must be >= 1; got {embed_dim}, {num_identities}"
            )
        self.weight = nn.Parameter(torch.empty(embed_dim, num_identities))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, image_emb: Tensor, text_emb: Tensor, labels: Tensor) -> Tensor:
        """(B, D), (B, D), (B,) -> () scalar loss."""
        return cmpc_loss(image_emb, text_emb, labels, self.weight)


def contrastive_loss(
    image_emb: Tensor, text_emb: Tensor, labels: Tensor, *, margin: float = 1.0
) -> Tensor:
    """Siamese contrastive loss over all B x B image-text pairs of the batch.

    Args:
        image_emb: (B, D) image embeddings.
        text_emb: (B, D) text embeddings.
        labels: (B,) identity ids. Pair (i, j) is positive (y = 1) when
            labels[i] == labels[j], which includes every (i, i); otherwise negative (y = 0).
        margin: negatives closer than this are pushed apart.

    Returns:
        () scalar: mean over positive pairs of d_ij^2 + mean over negative pairs of
        max(0, margin - d_ij)^2, with d_ij = |x_i - z_j| (Euclidean). This is the Hadsell
        et al. form y d^2 + (1 - y) max(0, m - d)^2 without its 1/2 factors, and each term
        is averaged over its own pairs rather than over all B^2: a batch has about B
        positives and B^2 - B negatives, and a plain mean would let the negatives drown
        the matching signal. A batch with no negatives contributes 0 for that term.
    """
    _check_batch(image_emb, text_emb, labels)
    # Expanded |x|^2 + |z|^2 - 2 x.z avoids a (B, B, D) difference tensor.
    sq_dist = (
        image_emb.pow(2).sum(dim=1, keepdim=True)
        + text_emb.pow(2).sum(dim=1)[None, :]
        - 2.0 * image_emb @ text_emb.T
    ).clamp_min(0.0)
    # sqrt has an infinite gradient at 0; the floor only touches coincident points.
    dist = sq_dist.clamp_min(1e-12).sqrt()
    pos = _same_label(labels).to(image_emb.dtype)
    neg = 1.0 - pos
    # Masked sums, not boolean indexing: no host sync and no empty-tensor mean (NaN).
    pos_term = (pos * sq_dist).sum() / pos.sum()
    neg_term = (neg * (margin - dist).clamp_min(0.0).pow(2)).sum() / neg.sum().clamp_min(1.0)
    return pos_term + neg_term


@dataclass(frozen=True)
class CorrNetOutputs:
    """What a CorrNet forward pass produces for one batch.

    Attributes:
        h_image: (B, K) common representation computed from the image view alone.
        h_text: (B, K) common representation computed from the text view alone.
        recon_from_both: (image_recon (B, D_img), text_recon (B, D_txt)) decoded from the
            representation of both views together.
        recon_from_image: the same pair, decoded from the image view alone.
        recon_from_text: the same pair, decoded from the text view alone.
    """

    h_image: Tensor
    h_text: Tensor
    recon_from_both: tuple[Tensor, Tensor]
    recon_from_image: tuple[Tensor, Tensor]
    recon_from_text: tuple[Tensor, Tensor]


def corrnet_correlation(h_image: Tensor, h_text: Tensor, *, eps: float = 1e-8) -> Tensor:
    """Correlation of two (B, K) representations, summed over the K dimensions.

    Returns:
        () scalar: sum_k sum_i a_ik b_ik / (sqrt(sum_i a_ik^2 + eps) sqrt(sum_i b_ik^2 + eps)),
        with a, b the representations centred on their batch means. Lies in [-K, K].
    """
    if h_image.ndim != 2 or h_image.shape != h_text.shape:
        raise ValueError(
            f"h_image and h_text must both be (B, K); got {tuple(h_image.shape)} "
            f"and {tuple(h_text.shape)}"
        )
    a = h_image - h_image.mean(dim=0)
    b = h_text - h_text.mean(dim=0)
    # eps inside each sqrt (as in the authors' code) keeps a dead unit's gradient finite.
    denom = (a.pow(2).sum(dim=0) + eps).sqrt() * (b.pow(2).sum(dim=0) + eps).sqrt()
    return ((a * b).sum(dim=0) / denom).sum()


def _sum_sq_error(target: Tensor, recon: Tensor) -> Tensor:
    if target.shape != recon.shape:
        raise ValueError(
            f"a reconstruction is {tuple(recon.shape)} but its view is {tuple(target.shape)}"
        )
    return (target - recon).pow(2).sum(dim=1).mean()


def corrnet_loss(
    image_view: Tensor,
    text_view: Tensor,
    outputs: CorrNetOutputs,
    *,
    lam: float = 0.02,
    eps: float = 1e-8,
) -> Tensor:
    """Correlational Neural Network objective.

    Args:
        image_view: (B, D_img) image input to the CorrNet.
        text_view: (B, D_txt) text input to the CorrNet.
        outputs: the CorrNet's reconstructions and common representations.
        lam: weight of the correlation term.
        eps: see :func:`corrnet_correlation`.

    Returns:
        () scalar: sum over the three sources (both views, image alone, text alone) of the
        reconstruction error of both views, each the batch mean of the per-sample summed
        squared error, minus lam * corrnet_correlation(h_image, h_text).

    Reconstructing both views from one view is what ties the two encoders to one space;
    the correlation term keeps the representations from the two views aligned per unit.
    """
    recon = image_view.new_zeros(())
    for image_recon, text_recon in (
        outputs.recon_from_both,
        outputs.recon_from_image,
        outputs.recon_from_text,
    ):
        recon = recon + _sum_sq_error(image_view, image_recon)
        recon = recon + _sum_sq_error(text_view, text_recon)
    return recon - lam * corrnet_correlation(outputs.h_image, outputs.h_text, eps=eps)
