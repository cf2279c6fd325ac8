"""Training configuration: a named TOML file in training/configs, or any TOML path."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from models import ConfigError, ModelConfig
from training.queries import FIELDS

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SCHEMES = ("cmpl", "siamese", "corrnet")


@dataclass(frozen=True)
class LossConfig:
    cmpm: bool = True
    cmpc: bool = False
    scale: float = 1.0  # logit scale (inverse temperature) of CMPM
    margin: float = 1.0  # contrastive (siamese)
    corr_lambda: float = 0.02  # correlation weight (corrnet)


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3  # heads, classifier, non-pretrained towers
    tower_lr: float = 1e-4  # pretrained towers
    weight_decay: float = 1e-4
    freeze_towers_epochs: int = 0  # train only the heads first
    schedule: str = "cosine"  # cosine decay to 0 over all steps, or "constant"
    warmup_steps: int = 100
    per_identity: int = 4  # products of one title kept together in a batch
    flip: bool = True
    max_steps_per_epoch: int = 0  # 0 = the whole training split
    # > 0: freeze the stem and first N blocks of an EfficientNet image tower and compute
    # their output once per photo (training.prefix_cache); no flips then.
    image_frozen_blocks: int = 0
    # Keep MiniLM's 11.7M-parameter word-embedding table as packaged: the artifact then
    # refers to the package for it instead of storing a copy (the 40 MB budget).
    freeze_word_embeddings: bool = False
    # Label-preserving photo augmentation (training.augment): small zoom in or out,
    # aspect stretch and resampling filter, so uploads framed or sized unlike the
    # catalogue's photos still land near them. Not with image_frozen_blocks.
    augment: bool = False
    # Save checkpoint.pt at least this often inside an epoch, for --resume.
    checkpoint_minutes: float = 20.0


@dataclass(frozen=True)
class DataConfig:
    split_seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    val_gallery: int = 1000
    num_workers: int = 0


@dataclass(frozen=True)
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


def _section(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"unknown key(s) in [{where}]: {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return cls(**data)


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
    data = dict(data)
    scheme = data.pop("scheme", "cmpl")
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    model = dict(data.pop("model", {}))
    model.setdefault("scheme", scheme)
    config = TrainConfig(
        name=str(data.pop("name", name)),
        scheme=scheme,
        seed=int(data.pop("seed", 0)),
        model=ModelConfig.from_dict(model),
        loss=_section(LossConfig, data.pop("loss", {}), "loss"),
        optim=_section(OptimConfig, data.pop("optim", {}), "optim"),
        data=_section(DataConfig, data.pop("data", {}), "data"),
        fields=_fields(data.pop("fields", {})),
    )
    if data:
        raise ConfigError(f"unknown top-level key(s) in config {name}: {', '.join(sorted(data))}")
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
