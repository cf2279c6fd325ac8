"""training.config: the bundled TOML configs parse; unknown keys are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from models import ConfigError
from training.config import available_configs, load_config, parse_config

REQUIRED = {"seed-mobilenet-bilstm", "seed-efficientnet-bilstm", "lite0-minilm", "tiny"}


def test_the_issue_s_configs_are_bundled_and_parse() -> None:
    assert REQUIRED <= set(available_configs())
    for name in available_configs():
        config = load_config(name)
        assert config.name == name
        assert config.model.scheme == config.scheme


def test_the_named_configs_choose_the_named_towers() -> None:
    seed = load_config("seed-mobilenet-bilstm")
    assert (seed.model.image.name, seed.model.text.name, seed.loss.cmpm) == (
        "mobilenet_v1",
        "bilstm",
        True,
    )
    assert load_config("seed-efficientnet-bilstm").model.image.name == "efficientnet-b0"
    lite = load_config("lite0-minilm")
    assert (lite.model.image.name, lite.model.text.name) == ("efficientnet-lite0", "minilm")
    assert lite.loss.cmpm and lite.loss.cmpc


def test_tiny_is_tiny(tiny_config) -> None:
    assert (tiny_config.model.image.name, tiny_config.model.text.name) == ("tiny_cnn", "bilstm")
    assert not tiny_config.model.image.pretrained


def test_a_path_works_as_well_as_a_name(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(
        'seed = 3\n[optim]\nepochs = 1\n[model.image]\nname = "tiny_cnn"\n'
    )
    config = load_config(tmp_path / "mine.toml")
    assert (config.name, config.seed, config.optim.epochs, config.model.image.name) == (
        "mine",
        3,
        1,
        "tiny_cnn",
    )


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"optim": {"epoch": 3}}, r"unknown key\(s\) in \[optim\]: epoch"),
        ({"loss": {"cmpm": True, "triplet": True}}, r"unknown key\(s\) in \[loss\]: triplet"),
        ({"data": {"val": 0.1}}, r"in \[data\]: val"),
        ({"model": {"image": {"nme": "tiny_cnn"}}}, r"in model\.image: nme"),
        ({"epochs": 3}, r"unknown key\(s\) in config x: epochs; known: name, scheme, seed"),
        ({"scheme": "triplet"}, r"unknown scheme 'triplet'"),
        ({"optim": "fast"}, r"\[optim\] must be a table/object, got str"),
        (
            {"loss": {"cmpc_init": "text"}},
            r'cmpc_init = "text" needs the CMPC classifier: scheme cmpl with \[loss\] cmpc = true',
        ),
        (
            {"scheme": "siamese", "loss": {"cmpc": True, "cmpc_init": "text"}},
            r"needs the CMPC classifier",
        ),
        ({"loss": {"cmpc": True, "cmpc_init": "titles"}}, r"invalid cmpc_init in \[loss\]"),
    ],
)
def test_mistakes_are_named(data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config(data, "x")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"optim": {"batch_size": "64"}}, r"invalid batch_size in \[optim\]: '64' \(.*integer"),
        ({"optim": {"lr": True}}, r"invalid lr in \[optim\]: True \(.*number"),
        (
            {"optim": {"schedule": "linear"}},
            r"invalid schedule in \[optim\]: 'linear' \(.*'cosine'",
        ),
        (
            {"optim": {"batch_size": 1}},
            r"invalid batch_size in \[optim\]: 1 \(.*greater than or equal to 2",
        ),
        ({"optim": {"epochs": 0}}, r"invalid epochs in \[optim\]: 0"),
        (
            {"optim": {"hard_batch_fraction": 1.0}},
            r"invalid hard_batch_fraction in \[optim\]: 1.0 \(.*less than 1",
        ),
        ({"loss": {"cmpc": "yes"}}, r"invalid cmpc in \[loss\]: 'yes' \(.*boolean"),
        (
            {"data": {"val_fraction": 1.5}},
            r"invalid val_fraction in \[data\]: 1.5 \(.*less than or equal to 1",
        ),
        ({"seed": "0"}, r"invalid seed in config x: '0'"),
        ({"name": 7}, r"invalid name in config x: 7"),
        ({"model": {"embed_dim": "512"}}, r"invalid embed_dim in model: '512' \(.*integer"),
        ({"fields": {"articleType": "high"}}, r"\[fields\] articleType must be a weight >= 0"),
    ],
)
def test_wrong_types_and_ranges_are_named(data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config(data, "x")


def test_an_int_may_stand_for_a_float() -> None:
    config = parse_config({"optim": {"lr": 1, "checkpoint_minutes": 15}}, "x")
    assert (config.optim.lr, config.optim.checkpoint_minutes) == (1.0, 15.0)


@pytest.mark.parametrize("name", available_configs())
def test_a_checkpoint_s_config_dict_parses_back_to_the_same_config(name: str) -> None:
    """--resume compares the saved `to_dict()` with the config's: it must be a faithful,
    stable picture of the config (lists of the TOML as tuples, every field present)."""
    config = load_config(name)
    saved = config.to_dict()
    assert parse_config(saved, "another name") == config
    assert list(saved) == ["name", "scheme", "seed", "model", "loss", "optim", "data", "fields"]
    assert saved["model"]["preprocess"]["mean"] == tuple(config.model.preprocess.mean)


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="training config not found: nope; give a TOML path or one of: .*tiny"
    ):
        load_config("nope")
    (tmp_path / "bad.toml").write_text("seed = = 1\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(tmp_path / "bad.toml")
