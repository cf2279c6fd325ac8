"""Inference-side building blocks: catalogue reading, image decoding, encoders and the
model artifact. Imports nothing else of this project."""

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
from models.joint import JointModel, build_model

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
