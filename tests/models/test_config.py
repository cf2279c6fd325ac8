"""models.config: dict round trips and clear errors for unknown keys, wrong types and
out-of-range values; the bundled artifact's config still loads and writes back alike."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from models import (
    DEFAULT_MODEL_DIR,
    ConfigError,
    HeadConfig,
    ImageEncoderConfig,
    ModelConfig,
    PreprocessConfig,
)


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


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (
            {"embed_dim": "512"},
            r"invalid embed_dim in model: '512' \(Input should be a valid integer",
        ),
        ({"embed_dim": 0}, r"invalid embed_dim in model: 0 \(Input should be greater than 0"),
        ({"embed_dim": 512.0}, r"invalid embed_dim in model: 512\.0"),
        ({"image": {"pretrained": "yes"}}, r"invalid pretrained in model\.image: 'yes'"),
        (
            {"image": {"name": 3}},
            r"invalid name in model\.image: 3 \(Input should be a valid string",
        ),
        ({"text": {"max_length": 1.5}}, r"invalid max_length in model\.text: 1\.5"),
        ({"preprocess": {"mean": [0.5, "x", 0.5]}}, r"invalid mean\.1 in model\.preprocess: 'x'"),
        (
            {"preprocess": {"std": [0.5, 0.5]}},
            r"invalid std\.2 in model\.preprocess: \(0\.5, 0\.5\) \(Field required",
        ),
        ({"head": {"hidden": [300, 0]}}, r"invalid hidden\.1 in model\.head: 0"),
        (
            {"head": {"dropout": 1.0}},
            r"invalid dropout in model\.head: 1\.0 \(Input should be less than 1",
        ),
    ],
)
def test_wrong_types_and_ranges_are_named(data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ModelConfig.from_dict(data)


def test_building_a_config_in_code_is_validated_too() -> None:
    with pytest.raises(ValidationError, match="embed_dim"):
        ModelConfig(embed_dim="512")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="height"):
        PreprocessConfig(height=-1)


def test_the_bundled_artifact_s_config_loads_and_writes_back_the_same() -> None:
    """The model id hashes config.json: an artifact saved from this config again must
    write the same model section."""
    stored = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())["model"]
    config = ModelConfig.from_dict(stored)
    assert json.dumps(config.to_dict(), indent=2) == json.dumps(stored, indent=2)


def test_flip_average_is_written_only_when_on() -> None:
    assert "image_flip_average" not in ModelConfig().to_dict()
    on = ModelConfig(image_flip_average=True)
    assert on.to_dict()["image_flip_average"] is True
    assert ModelConfig.from_dict(on.to_dict()) == on


def test_image_scales_are_written_only_when_set_and_must_be_positive() -> None:
    assert "image_scales" not in ModelConfig().to_dict()
    on = ModelConfig(image_scales=(1.25,))
    assert on.to_dict()["image_scales"] == (1.25,)
    assert ModelConfig.from_dict(json.loads(json.dumps(on.to_dict()))) == on
    for bad in ([0.0], [-1.0], [5.0], ["1.25"]):
        with pytest.raises(ConfigError, match="image_scales"):
            ModelConfig.from_dict({"image_scales": bad})


def test_encoding_like_takes_only_the_encoding_options() -> None:
    theirs = ModelConfig(image_flip_average=True, image_scales=(1.25,), embed_dim=64)
    mine = ModelConfig(embed_dim=32).encoding_like(theirs)
    assert mine == ModelConfig(embed_dim=32, image_flip_average=True, image_scales=(1.25,))
