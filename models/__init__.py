"""Inference-side building blocks: catalogue reading, image decoding, encoders and the
model artifact. Imports nothing else of this project.

Importing the package imports no PyTorch (the CPU service runs without it): the names
that need it, JointModel and build_model, are loaded on first use (__getattr__).
"""

from typing import TYPE_CHECKING, Any

from models.artifact import (
    DEFAULT_MODEL_DIR,
    load_model,
    read_metrics,
    save_artifact,
    write_metrics,
)
from models.catalog import Catalog, Product, SkippedRow, read_catalog
from models.config import (
    HeadConfig,
    ImageEncoderConfig,
    ModelConfig,
    PreprocessConfig,
    TextEncoderConfig,
)
from models.errors import ArtifactError, CatalogError, ConfigError, ImageDecodeError, ModelsError
from models.fusion import DEFAULT_PRODUCT_WEIGHTS, fuse
from models.images import open_image

if TYPE_CHECKING:
    from models.joint import JointModel, build_model

# Name -> the module defining it, imported when the name is first asked for.
_LAZY = {"JointModel": "models.joint", "build_model": "models.joint"}

__all__ = [
    "DEFAULT_MODEL_DIR",
    "DEFAULT_PRODUCT_WEIGHTS",
    "ArtifactError",
    "Catalog",
    "CatalogError",
    "ConfigError",
    "HeadConfig",
    "ImageDecodeError",
    "ImageEncoderConfig",
    "JointModel",
    "ModelConfig",
    "ModelsError",
    "PreprocessConfig",
    "Product",
    "SkippedRow",
    "TextEncoderConfig",
    "build_model",
    "fuse",
    "load_model",
    "open_image",
    "read_catalog",
    "read_metrics",
    "save_artifact",
    "write_metrics",
]


def __getattr__(name: str) -> Any:
    """`models.JointModel` / `from models import build_model`: imports PyTorch then."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'models' has no attribute {name!r}")
