"""Start training from a trained artifact instead of the packaged pretrained weights."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from models import ArtifactError, JointModel, ModelConfig, load_model
from models.transforms import ImageTransform


def model_from_artifact(config: ModelConfig, path: Path) -> JointModel:
    """The artifact at `path`, ready to train under `config` (fine-tuning).

    The architectures must match: towers, heads and embedding size (a Bi-LSTM keeps
    the artifact's vocabulary, which its weights depend on); preprocessing may differ,
    so a new input size fine-tunes the same weights. How photos are encoded (mirror
    averaging, `image_scales`) is no architecture: an artifact's carries over, so that
    fine-tuning the bundled model keeps encoding photos as it does, and a config may
    turn mirror averaging on or name other scales.
    """
    model = load_model(path, device="cpu")
    theirs = model.config
    config = replace(
        config,
        image_flip_average=config.image_flip_average or theirs.image_flip_average,
        image_scales=config.image_scales or theirs.image_scales,
    )
    if replace(config, preprocess=theirs.preprocess, scheme=theirs.scheme) != (
        theirs.encoding_like(config)
    ):
        raise ArtifactError(
            f"--init {path}: its architecture differs from the training config's "
            f"(artifact: image {theirs.image.name}, text {theirs.text.name}, head "
            f"{theirs.head.kind}, embed_dim {theirs.embed_dim}; config: image "
            f"{config.image.name}, text {config.text.name}, head {config.head.kind}, "
            f"embed_dim {config.embed_dim})"
        )
    model.config = config
    model.transform = ImageTransform(config.preprocess)
    model.model_id = "untrained"
    model.metrics = {}
    return model
