"""Model configuration: what an artifact needs to rebuild its architecture.

Plain dataclasses that round-trip through dicts (JSON in artifacts, TOML in training
configs). Names of towers and heads are looked up in explicit registries, never
imported from dotted paths.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

from models.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class PreprocessConfig:
    """How a photo becomes a tensor: letterbox on white to height x width, then normalise."""

    height: int = 128
    width: int = 96
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class ImageEncoderConfig:
    name: str = "efficientnet-lite0"
    pretrained: bool = True  # load packaged weights (never downloads)
    weights_path: str | None = None  # optional local weights (efficientnet-b0)
    width_multiplier: float = 1.0  # mobilenet_v1
    channels: int = 16  # tiny_cnn (tests)


@dataclass(frozen=True)
class TextEncoderConfig:
    name: str = "minilm"
    pretrained: bool = True
    word_dim: int = 300  # bilstm
    hidden_dim: int = 512  # bilstm, per direction
    max_length: int = 64  # tokens
    min_count: int = 1  # bilstm vocabulary: words seen fewer times map to UNK


@dataclass(frozen=True)
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
    hidden: tuple[int, ...] = ()
    dropout: float = 0.0
    input_norm: bool = False
    output_norm: bool = False


@dataclass(frozen=True)
class ModelConfig:
    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    embed_dim: int = 512
    scheme: str = "cmpl"  # cmpl | siamese | corrnet: how it was trained (informational)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return _build(cls, data, "model")


def _build(cls: type[T], data: dict[str, Any], where: str) -> T:
    """Build a (nested) config dataclass from a dict, rejecting unknown keys by name."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table/object, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown key(s) in {where}: {', '.join(unknown)}; known: {', '.join(known)}"
        )
    nested = {
        "image": ImageEncoderConfig,
        "text": TextEncoderConfig,
        "preprocess": PreprocessConfig,
        "head": HeadConfig,
    }
    values: dict[str, Any] = {}
    for key, value in data.items():
        if cls is ModelConfig and key in nested:
            values[key] = _build(nested[key], value, f"{where}.{key}")
        elif isinstance(value, list):
            values[key] = tuple(value)
        else:
            values[key] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"invalid {where} config: {exc}") from exc
