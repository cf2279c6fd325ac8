"""Weight imprinting for CMPC's identity classifier.

A run that fine-tunes a trained artifact with CMPC on gets a classifier the artifact
never had. From Xavier's random directions its first steps push every embedding
towards arbitrary class vectors, undoing what the artifact learnt before the
classifier is worth anything. Imprinted (Qi, Brown & Lowe, CVPR 2018), class c's
weight is the model's own unit text embedding of title c: the classifier starts where
the embedding space already is, and CMPC refines it from there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from models.joint import JointModel
from training.losses import CMPCClassifier

logger = logging.getLogger(__name__)
__all__ = ["imprint_cmpc"]


@torch.no_grad()
def imprint_cmpc(classifier: CMPCClassifier, model: JointModel, titles: Sequence[str]) -> None:
    """Set column c of `classifier.weight` (D, num_identities) to the unit text
    embedding of `titles[c]` (one title per identity, in label order)."""
    embed_dim, num_identities = classifier.weight.shape
    if len(titles) != num_identities:
        raise ValueError(
            f"{len(titles)} titles for a classifier of {num_identities} identities: "
            "give one title per identity, in label order"
        )
    if model.embed_dim != embed_dim:
        raise ValueError(
            f"the model embeds in {model.embed_dim} dimensions, the classifier in {embed_dim}"
        )
    was_training = model.training
    embeddings = model.encode_texts(list(titles))  # (N, D), unit rows; sets eval mode
    model.train(was_training)
    weight = torch.from_numpy(embeddings).T.to(classifier.weight)
    classifier.weight.copy_(weight)
    logger.info("CMPC classifier imprinted from %d titles' text embeddings", num_identities)
