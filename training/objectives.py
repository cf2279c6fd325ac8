"""Training objectives: what each scheme optimises, given one forward pass.

An objective is an nn.Module so that its own parameters (CMPC's identity weights,
the Correlational network's decoders) are trained and checkpointed with the model.
Every objective takes the JointModel's forward outputs (image features (B, Fi), text
features (B, Ft), image and text embeddings (B, D)) and identity labels (B,), and
returns a () loss. Only the JointModel is saved as the artifact, so whatever an
objective owns is training-time machinery and retrieval needs none of it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from training.config import TrainConfig
from training.losses import (
    CMPCClassifier,
    CorrNetOutputs,
    cmpm_loss,
    contrastive_loss,
    corrnet_loss,
    multi_positive_loss,
)
from training.queries import FieldQueries

Outputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class CMPLObjective(nn.Module):
    """Deep CMPL: CMPM, plus CMPC when the config asks for it."""

    def __init__(self, config: TrainConfig, num_identities: int) -> None:
        super().__init__()
        self.use_cmpm = config.loss.cmpm
        self.scale = config.loss.scale
        self.cmpc = (
            CMPCClassifier(config.model.embed_dim, num_identities) if config.loss.cmpc else None
        )

    def forward(self, outputs: Outputs, labels: torch.Tensor) -> torch.Tensor:
        _, _, image_emb, text_emb = outputs
        loss = image_emb.new_zeros(())
        if self.use_cmpm:
            loss = loss + cmpm_loss(image_emb.float(), text_emb.float(), labels, scale=self.scale)
        if self.cmpc is not None:
            loss = loss + self.cmpc(image_emb.float(), text_emb.float(), labels)
        return loss


class SiameseObjective(nn.Module):
    """Two-branch (Siamese) network: contrastive loss on the Euclidean distance between
    every image and every text embedding of the batch; same-title pairs are positives,
    never negatives (see training.losses.contrastive_loss).

    The embeddings are L2-normalised before the distance. Retrieval ranks by cosine on
    L2-normalised embeddings, and on the unit sphere |x - z|^2 = 2 - 2 cos(x, z), so the
    distance trained here orders a gallery exactly as retrieval will. Unnormalised, the
    loss could also be lowered by shrinking or growing norms, which cosine ranking
    ignores. It also gives the margin a fixed meaning: d < 1 is cos > 0.5, so margin 1
    pushes mismatched pairs to cosine 0.5 or below (d ranges over [0, 2]).
    """

    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        self.margin = config.loss.margin

    def forward(self, outputs: Outputs, labels: torch.Tensor) -> torch.Tensor:
        _, _, image_emb, text_emb = outputs
        image_unit = F.normalize(image_emb.float(), dim=1)
        text_unit = F.normalize(text_emb.float(), dim=1)
        return contrastive_loss(image_unit, text_unit, labels, margin=self.margin)


def _decoder(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers through `sizes`, ReLU between them, a linear output (features are
    real-valued: MiniLM's are signed)."""
    layers: list[nn.Module] = []
    for i, (width, out) in enumerate(itertools.pairwise(sizes)):
        if i:
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Linear(width, out))
    return nn.Sequential(*layers)


class CorrNetObjective(nn.Module):
    """Correlational Neural Network (Chandar et al., Neural Comput. 2016).

    The JointModel's heads are the two views' encoders: with the config's `mlp` head
    (hidden 300, 200; embed_dim 50) each maps a tower's features to a K = 50 vector
    whose last layer is linear, i.e. the view's pre-activation encoding (with the
    head's `output_norm`, standardised per dimension: see below). Common
    representations, with the identity as the common layer's activation:

        h_image = image_head(x)                  (B, K)  from the image view alone
        h_text  = text_head(y)                   (B, K)  from the text view alone
        h_both  = h_image + h_text               (B, K)  from both views

    CorrNet's h(x, y) = f(W x + V y + b): the sum of the views' pre-activation
    encodings; a missing view contributes nothing to the sum (CorrNet feeds it as
    zeros). Here each view's encoder carries its own output bias instead of one shared
    b. The identity activation makes h_image and h_text exactly what retrieval uses:
    JointModel.encode_* return the heads' outputs, L2-normalised.

    This module owns the decoders, which mirror the encoders (K -> 200 -> 300 -> the
    view's feature size); the same pair decodes each of the three representations, and
    both views are reconstructed from each. The reconstruction targets are the tower
    features, detached: the towers are feature extractors, and a tower that could move
    its own targets would be rewarded for making them easy (constant) to reconstruct.
    Loss: training.losses.corrnet_loss with lam = config.loss.corr_lambda. Labels are
    not used: CorrNet learns from paired views only.

    Two head options make the seed-corrnet config work on frozen pretrained features
    (each measured on 6,000 KAGL products, seed protocol):
    - `input_norm`: the encoders see each feature standardised over the batch, and the
      targets here are standardised the same way (the views are what the encoders see).
      Raw, EfficientNet-Lite0's 1,280 features carry ~20 times the squared error of
      MiniLM's 384, and the text view barely counts.
    - `output_norm`: h_image and h_text standardised per dimension. The correlation is
      blind to each view's mean and scale, and reconstruction pins them only loosely,
      so the two views' clouds may sit apart; cosine retrieval then fails on pairs the
      loss has matched (CorrNet's retrieval space, like CCA's, is the centred one).
    """

    def __init__(self, config: TrainConfig, image_dim: int, text_dim: int) -> None:
        super().__init__()
        hidden = tuple(reversed(config.model.head.hidden))
        embed_dim = config.model.embed_dim
        self.image_decoder = _decoder((embed_dim, *hidden, image_dim))
        self.text_decoder = _decoder((embed_dim, *hidden, text_dim))
        self.lam = config.loss.corr_lambda
        self.standardise_views = config.model.head.input_norm

    def view(self, features: torch.Tensor) -> torch.Tensor:
        """(B, F) tower features -> (B, F) reconstruction target, detached, float32."""
        target = features.detach().float()
        if self.standardise_views:  # as the head's BatchNorm1d(affine=False) in training
            target = F.batch_norm(target, None, None, training=True)
        return target

    def reconstruct(self, h_image: torch.Tensor, h_text: torch.Tensor) -> CorrNetOutputs:
        """(B, K), (B, K) single-view representations -> the decoders' outputs."""
        batch = h_image.shape[0]
        # One decoder pass over the three representations stacked: (3B, K).
        stacked = torch.cat([h_image + h_text, h_image, h_text])
        images = self.image_decoder(stacked).float().split(batch)
        texts = self.text_decoder(stacked).float().split(batch)
        return CorrNetOutputs(
            h_image=h_image,
            h_text=h_text,
            recon_from_both=(images[0], texts[0]),
            recon_from_image=(images[1], texts[1]),
            recon_from_text=(images[2], texts[2]),
        )

    def forward(self, outputs: Outputs, labels: torch.Tensor) -> torch.Tensor:
        image_features, text_features, h_image, h_text = outputs
        reconstructed = self.reconstruct(h_image.float(), h_text.float())
        return corrnet_loss(
            self.view(image_features), self.view(text_features), reconstructed, lam=self.lam
        )


def multi_field_loss(
    image_emb: torch.Tensor,
    queries: Sequence[FieldQueries],
    query_embs: Sequence[torch.Tensor],
    weights: Mapping[str, float],
    *,
    scale: float = 1.0,
) -> torch.Tensor:
    """Sum over fields of weight * multi_positive_loss(photos, the field's queries):
    the shopper-query terms trained beside a scheme's title objective."""
    loss = image_emb.new_zeros((), dtype=torch.float32)
    for field, embeddings in zip(queries, query_embs, strict=True):
        positives = field.positives.to(image_emb.device)
        term = multi_positive_loss(image_emb.float(), embeddings.float(), positives, scale=scale)
        loss = loss + weights[field.field] * term
    return loss


ObjectiveFactory = Callable[[TrainConfig, int, int, int], nn.Module]

# scheme -> factory(config, num_identities, image_feature_dim, text_feature_dim)
OBJECTIVES: dict[str, ObjectiveFactory] = {
    "cmpl": lambda config, identities, image_dim, text_dim: CMPLObjective(config, identities),
    "siamese": lambda config, identities, image_dim, text_dim: SiameseObjective(config),
    "corrnet": lambda config, identities, image_dim, text_dim: CorrNetObjective(
        config, image_dim, text_dim
    ),
}


def build_objective(
    config: TrainConfig, num_identities: int, *, image_dim: int, text_dim: int
) -> nn.Module:
    """The scheme's loss module: (image features, text features, image and text
    embeddings), identities (B,) -> scalar loss. Features are (B, image_dim/text_dim)."""
    if config.scheme not in OBJECTIVES:
        raise ValueError(
            f"no objective for scheme {config.scheme!r}; known: {', '.join(OBJECTIVES)}"
        )
    return OBJECTIVES[config.scheme](config, num_identities, image_dim, text_dim)
