"""Model configuration: what an artifact needs to rebuild its architecture.

Frozen dataclasses, validated by pydantic, that round-trip through dicts (JSON in
artifacts, TOML in training configs). `parse_config_section` is the one strict parser
for every config table, here and in training.config: unknown keys, wrong types ("512"
for an int) and out-of-range values are ConfigErrors naming the table and the key.
Names of towers and heads are looked up in explicit registries, never imported from
dotted paths.
"""

from __future__ import annotations

import typing
from dataclasses import asdict, field, fields, is_dataclass, replace
from typing import Annotated, Any, TypeVar

from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass

from models.errors import ConfigError

T = TypeVar("T")

# Strict: a value of the wrong type is an error, never coerced (an int may stand for a
# float). Extra keys are refused too, though the parser names them first.
STRICT_CONFIG = ConfigDict(strict=True, extra="forbid")
Positive = Annotated[int, Field(gt=0)]


@dataclass(frozen=True, config=STRICT_CONFIG)
class PreprocessConfig:
    """How a photo becomes a tensor: letterbox on white to height x width, then normalise."""

    height: Positive = 128
    width: Positive = 96
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)


@dataclass(frozen=True, config=STRICT_CONFIG)
class ImageEncoderConfig:
    name: str = "efficientnet-lite0"
    # Start from the packaged weights (efficientnet-lite0); never downloads. Ignored by
    # efficientnet-b0 (random init unless weights_path), mobilenet_v1 and tiny_cnn (random).
    pretrained: bool = True
    weights_path: str | None = None  # optional local weights (efficientnet-b0)
    width_multiplier: Annotated[float, Field(gt=0)] = 1.0  # mobilenet_v1
    channels: Positive = 16  # tiny_cnn (tests)


@dataclass(frozen=True, config=STRICT_CONFIG)
class TextEncoderConfig:
    name: str = "minilm"
    pretrained: bool = True
    word_dim: Positive = 300  # bilstm
    hidden_dim: Positive = 512  # bilstm, per direction
    max_length: Positive = 64  # tokens
    min_count: Positive = 1  # bilstm vocabulary: words seen fewer times map to UNK


@dataclass(frozen=True, config=STRICT_CONFIG)
class HeadConfig:
    """Projection from a tower's features into the joint space.

    `linear` is Deep CMPL's projection; `mlp` stacks `hidden` layers (ReLU, dropout)
    before the final linear layer (the Siamese and Correlational networks).
    `input_norm` / `output_norm` standardise each input feature / each output
    dimension (BatchNorm1d without affine: batch statistics in training, running ones
    at inference). Input: heads on frozen pretrained towers, whose features differ in
    scale by orders of magnitude. Output: the Correlational network, whose loss leaves
    each view's mean free, while cosine retrieval needs the two views centred alike.
    """

    kind: str = "linear"
    hidden: tuple[Positive, ...] = ()
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    input_norm: bool = False
    output_norm: bool = False


@dataclass(frozen=True, config=STRICT_CONFIG)
class ModelConfig:
    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    embed_dim: Positive = 512
    scheme: str = "cmpl"  # cmpl | siamese | corrnet: how it was trained (informational)
    # Encode each photo and its mirror image and average the two embeddings (test-time
    # augmentation; training flips photos at random, so both views are familiar): twice
    # the image tower's work per photo, in indexing and in every photo query.
    image_flip_average: bool = False
    # Also encode each photo at these sizes, relative to the preprocessed input (1.25:
    # 160x120 beside 128x96), resized inside the model so exported graphs carry it, and
    # sum every view's normalised embedding (multi-scale test-time augmentation): one
    # more pass of the image tower per scale, on a larger input for a scale above 1.
    image_scales: tuple[Annotated[float, Field(gt=0, le=4)], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # the encoding options are written only when on: config.json is hashed into the
        # model id, and an artifact saved before they existed keeps its id when saved again
        if not self.image_flip_average:
            del data["image_flip_average"]
        if not self.image_scales:
            del data["image_scales"]
        return data

    def encoding_like(self, other: ModelConfig) -> ModelConfig:
        """This architecture, encoding photos as `other` does (mirror averaging and
        scales: how photos are encoded, not what the weights are)."""
        return replace(
            self, image_flip_average=other.image_flip_average, image_scales=other.image_scales
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return parse_config_section(cls, data, "model")


def parse_config_section(cls: type[T], data: Any, where: str) -> T:
    """Build the config dataclass `cls` from a table/object, strictly.

    Nested config dataclasses are built from nested tables (named `where.key` in
    errors); lists become tuples. Raises ConfigError naming `where` and the bad key.
    """
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table/object, got {type(data).__name__}")
    known = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown key(s) in {where}: {', '.join(unknown)}; known: {', '.join(known)}"
        )
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, value in data.items():
        if is_dataclass(hints[key]):
            values[key] = parse_config_section(hints[key], value, f"{where}.{key}")
        else:
            values[key] = tuple(value) if isinstance(value, list) else value
    try:
        return cls(**values)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, where)) from None


def describe_errors(exc: ValidationError, where: str) -> str:
    """One line per bad value: "invalid embed_dim in model: '512' (Input should be ...)"."""
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        what = f"{key} in {where}" if key else where
        lines.append(f"invalid {what}: {error['input']!r} ({error['msg']})")
    return "; ".join(lines)
