"""Training configuration: a named TOML file in training/configs, or any TOML path.

Validated like the model's configuration (models.config.parse_config_section): a
wrong key, type or range is a ConfigError naming the table and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from models import ConfigError, ModelConfig
from models.config import STRICT_CONFIG, Positive, parse_config_section
from training.data import DEFAULT_SPLIT, Fraction, SplitSpec
from training.queries import FIELDS

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SCHEMES = ("cmpl", "siamese", "corrnet")
Count = Annotated[int, Field(ge=0)]
NonNegative = Annotated[float, Field(ge=0)]


@dataclass(frozen=True, config=STRICT_CONFIG)
class LossConfig:
    cmpm: bool = True
    cmpc: bool = False
    # "text": each CMPC class weight starts as the model's own unit text embedding of
    # its title (weight imprinting), so a fine-tuning run's new classifier agrees with
    # the embedding space from its first step instead of pulling it towards random
    # directions; "random": Xavier, as in the paper.
    cmpc_init: Literal["random", "text"] = "random"
    scale: Annotated[float, Field(gt=0)] = 1.0  # logit scale (inverse temperature) of CMPM
    margin: NonNegative = 1.0  # contrastive (siamese)
    corr_lambda: NonNegative = 0.02  # correlation weight (corrnet)


@dataclass(frozen=True, config=STRICT_CONFIG)
class OptimConfig:
    epochs: Positive = 10
    batch_size: Annotated[int, Field(ge=2)] = 64  # a one-item batch has no negatives
    lr: NonNegative = 1e-3  # heads, classifier, non-pretrained towers
    tower_lr: NonNegative = 1e-4  # pretrained towers
    weight_decay: NonNegative = 1e-4
    freeze_towers_epochs: Count = 0  # train only the heads first
    schedule: Literal["cosine", "constant"] = "cosine"  # cosine decay to 0 over all steps
    warmup_steps: Count = 100
    per_identity: Positive = 4  # products of one title kept together in a batch
    flip: bool = True
    max_steps_per_epoch: Count = 0  # 0 = the whole training split
    # > 0: freeze the stem and first N blocks of an EfficientNet image tower and compute
    # their output once per photo (training.prefix_cache); no flips then.
    image_frozen_blocks: Count = 0
    # Keep MiniLM's 11.7M-parameter word-embedding table as packaged: the artifact then
    # refers to the package for it instead of storing a copy (the 40 MB budget).
    freeze_word_embeddings: bool = False
    # Keep the whole text side (tower and projection) as it starts, in eval mode: train
    # an image side into the text space of `train --init-text MODEL_DIR` (a locked text
    # side, as LiT locks its image side), a new tower learning from settled targets.
    freeze_text: bool = False
    # Label-preserving photo augmentation (training.augment): small zoom in or out,
    # aspect stretch and resampling filter, so uploads framed or sized unlike the
    # catalogue's photos still land near them. Not with image_frozen_blocks.
    augment: bool = False
    # > 0: this share of each batch comes from products of one gender and article type
    # (training.data.IdentityBatchSampler): hard negatives, the products a whole title
    # must be told apart from; the rest of the batch stays random.
    hard_batch_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.0
    # Save checkpoint.pt at least this often inside an epoch, for --resume.
    checkpoint_minutes: NonNegative = 20.0  # 0: after every batch
    # > 0: a batch larger than this is stepped with cached gradients
    # (training.grad_cache): the towers hold the activations of this many photos or
    # texts at a time, so the batch (the negatives per title) can grow past memory, for
    # one forward more per step. CMPL and Siamese schemes, one process.
    grad_cache_chunk: Count = 0


@dataclass(frozen=True, config=STRICT_CONFIG)
class DataConfig:
    split_seed: int = DEFAULT_SPLIT.seed
    val_fraction: Fraction = DEFAULT_SPLIT.val_fraction
    test_fraction: Fraction = DEFAULT_SPLIT.test_fraction
    val_gallery: Positive = 1000
    num_workers: Count = 0

    @property
    def split(self) -> SplitSpec:
        return SplitSpec(self.split_seed, self.val_fraction, self.test_fraction)


@dataclass(frozen=True, config=STRICT_CONFIG)
class TrainConfig:
    name: str
    scheme: str = "cmpl"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    # Multi-field training: query field (training.queries.FIELDS) -> weight of its
    # multi-positive term against the photo; the title term has weight 1.
    fields: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fields(data: dict[str, Any]) -> dict[str, float]:
    if not isinstance(data, dict):
        raise ConfigError("[fields] must be a table of query field = weight")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ConfigError(
            f"unknown query field(s) in [fields]: {', '.join(unknown)}; known: {', '.join(FIELDS)}"
        )
    weights = {}
    for name, weight in data.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise ConfigError(f"[fields] {name} must be a weight >= 0, not {weight!r}")
        if weight > 0:
            weights[name] = float(weight)
    return weights


def parse_config(data: dict[str, Any], name: str) -> TrainConfig:
    """A TrainConfig from a parsed TOML document; `name` unless the document names itself."""
    data = dict(data)
    scheme = data.get("scheme", "cmpl")
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    model = data.pop("model", {})
    if isinstance(model, dict):  # the model records how it was trained
        model = {"scheme": scheme, **model}
    sections = {
        "model": ModelConfig.from_dict(model),
        "loss": parse_config_section(LossConfig, data.pop("loss", {}), "[loss]"),
        "optim": parse_config_section(OptimConfig, data.pop("optim", {}), "[optim]"),
        "data": parse_config_section(DataConfig, data.pop("data", {}), "[data]"),
        "fields": _fields(data.pop("fields", {})),
    }
    config = parse_config_section(TrainConfig, {"name": name, **data, **sections}, f"config {name}")
    if config.loss.cmpc_init != "random" and not (config.loss.cmpc and config.scheme == "cmpl"):
        raise ConfigError(
            f'[loss] cmpc_init = "{config.loss.cmpc_init}" needs the CMPC classifier: '
            "scheme cmpl with [loss] cmpc = true"
        )
    if config.optim.grad_cache_chunk and config.scheme == "corrnet":
        raise ConfigError(
            "[optim] grad_cache_chunk works for schemes whose loss reads the embeddings "
            "only (cmpl, siamese); corrnet reconstructs the towers' features"
        )
    return config


def available_configs() -> list[str]:
    return sorted(path.stem for path in CONFIG_DIR.glob("*.toml"))


def load_config(name_or_path: str | Path) -> TrainConfig:
    """A config by name (training/configs/NAME.toml) or by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise ConfigError(
            f"training config not found: {name_or_path}; give a TOML path or one of: {', '.join(available_configs())}"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return parse_config(data, path.stem)
