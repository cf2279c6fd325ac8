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


def take_text_side(model: JointModel, path: Path) -> JointModel:
    """`model` with the text tower, its projection and its tokenizer of the artifact at
    `path`: a new image side (another tower, fresh from ImageNet) trained into a text
    space that is already good (with `[optim] freeze_text`, kept as it is).

    The text towers, head kind and embedding size must match; the image side may differ.
    """
    source = load_model(path, device="cpu")
    theirs, ours = source.config, model.config
    if (theirs.text, theirs.head, theirs.embed_dim) != (ours.text, ours.head, ours.embed_dim):
        raise ArtifactError(
            f"--init-text {path}: its text side differs from the training config's "
            f"(artifact: text {theirs.text.name}, head {theirs.head.kind}, embed_dim "
            f"{theirs.embed_dim}; config: text {ours.text.name}, head {ours.head.kind}, "
            f"embed_dim {ours.embed_dim})"
        )
    # The modules themselves, not their weights: a Bi-LSTM's table is sized by its own
    # vocabulary, which comes along with its tokenizer.
    model.tokenizer = source.tokenizer
    model.text_tower = source.text_tower
    model.text_head = source.text_head
    return model
