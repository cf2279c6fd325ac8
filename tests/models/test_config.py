"""models.config: dict round trips and clear errors for unknown keys."""

from __future__ import annotations

import pytest

from models import ConfigError, HeadConfig, ImageEncoderConfig, ModelConfig, PreprocessConfig


def test_round_trip_through_a_dict() -> None:
    config = ModelConfig(
        image=ImageEncoderConfig(name="mobilenet_v1", pretrained=False, width_multiplier=0.5),
        head=HeadConfig(kind="mlp", hidden=(300, 200), dropout=0.1),
        preprocess=PreprocessConfig(height=64, width=48),
        embed_dim=50,
        scheme="corrnet",
    )
    assert ModelConfig.from_dict(config.to_dict()) == config


def test_lists_become_tuples_and_missing_keys_take_defaults() -> None:
    config = ModelConfig.from_dict(
        {"head": {"kind": "mlp", "hidden": [500]}, "preprocess": {"mean": [0.1, 0.2, 0.3]}}
    )
    assert config.head.hidden == (500,)
    assert config.preprocess.mean == (0.1, 0.2, 0.3)
    assert config.preprocess.std == PreprocessConfig().std
    assert config.image == ImageEncoderConfig() and config.embed_dim == 512


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"embed_dims": 64}, r"unknown key\(s\) in model: embed_dims; known: image, text"),
        (
            {"image": {"name": "tiny_cnn", "chanels": 4}},
            r"unknown key\(s\) in model\.image: chanels",
        ),
        ({"text": {"hidden": 8}}, r"in model\.text: hidden"),
        ({"preprocess": {"size": 224}}, r"in model\.preprocess: size"),
        ({"head": {"layers": 2}}, r"in model\.head: layers"),
        ({"image": "tiny_cnn"}, r"model\.image must be a table/object, got str"),
    ],
)
def test_unknown_keys_and_wrong_shapes_are_rejected_by_name(data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ModelConfig.from_dict(data)


def test_a_non_dict_is_rejected() -> None:
    with pytest.raises(ConfigError, match="model must be a table/object, got list"):
        ModelConfig.from_dict([])  # type: ignore[arg-type]
