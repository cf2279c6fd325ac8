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
        ({"epochs": 3}, r"unknown top-level key\(s\) in config x: epochs"),
        ({"scheme": "triplet"}, r"unknown scheme 'triplet'"),
    ],
)
def test_mistakes_are_named(data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config(data, "x")


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="training config not found: nope; give a TOML path or one of: .*tiny"
    ):
        load_config("nope")
    (tmp_path / "bad.toml").write_text("seed = = 1\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(tmp_path / "bad.toml")
