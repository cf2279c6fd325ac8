"""models.joint: the two-tower model's training pass and its batched inference API."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from models import (
    ConfigError,
    HeadConfig,
    ImageEncoderConfig,
    JointModel,
    ModelConfig,
    TextEncoderConfig,
    build_model,
)

TITLES = ["Puma Men Black T-shirt", "Nike Women Blue Running Shoes", "Red Cap", "x"]
LONG = "Fastrack Men Black Dial Watch with a long description of straps, clasps and dials " * 3


def _check_embeddings(embeddings: np.ndarray, count: int, dim: int) -> None:
    assert embeddings.shape == (count, dim) and embeddings.dtype == np.float32
    assert np.isfinite(embeddings).all()
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)


def test_encode_texts_is_l2_normalised_float32(tiny_model: JointModel) -> None:
    _check_embeddings(tiny_model.encode_texts(TITLES), len(TITLES), tiny_model.embed_dim)
    _check_embeddings(tiny_model.encode_texts([]), 0, tiny_model.embed_dim)
    assert tiny_model.device == torch.device("cpu")
    assert tiny_model.model_id.startswith("sha256-")


def test_batching_and_padding_do_not_change_an_embedding(tiny_model: JointModel) -> None:
    """Packed sequences: a short title padded next to a long one encodes as it does alone."""
    together = tiny_model.encode_texts([*TITLES, LONG], batch_size=256)
    one_by_one = np.concatenate([tiny_model.encode_texts([t]) for t in [*TITLES, LONG]])
    np.testing.assert_allclose(together, one_by_one, atol=1e-6)
    np.testing.assert_allclose(
        tiny_model.encode_texts([*TITLES, LONG], batch_size=2), together, atol=1e-6
    )


def test_forward_gives_features_and_embeddings(tiny_model_config: ModelConfig) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_model_config, TITLES)
    pixels = torch.randn(3, 3, 32, 24)
    tokens = model.tokenize(TITLES[:3])
    image_features, text_features, image_emb, text_emb = model(pixels, tokens)
    assert image_features.shape == (3, model.image_tower.feature_dim)
    assert text_features.shape == (3, model.text_tower.feature_dim)
    assert image_emb.shape == text_emb.shape == (3, 32)
    torch.testing.assert_close(model.embed_images(pixels), image_emb)
    torch.testing.assert_close(model.embed_texts(tokens), text_emb)
    # encode_* are the same projections, normalised
    encoded = model.encode_texts(TITLES[:3])
    np.testing.assert_allclose(
        encoded, torch.nn.functional.normalize(text_emb, dim=1).detach().numpy(), atol=1e-6
    )


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            {"image": ImageEncoderConfig(name="resnet")},
            "unknown image encoder 'resnet'; choose one of",
        ),
        ({"text": TextEncoderConfig(name="gpt")}, "unknown text encoder 'gpt'"),
        ({"head": HeadConfig(kind="linear", hidden=(8,))}, "a linear head takes no hidden layers"),
        ({"head": HeadConfig(kind="conv")}, "unknown head kind 'conv'"),
    ],
)
def test_unknown_components_raise_config_error(
    tiny_model_config: ModelConfig, change: dict, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        build_model(replace(tiny_model_config, **change), TITLES)


def test_bilstm_needs_a_vocabulary(tiny_model_config: ModelConfig) -> None:
    with pytest.raises(ConfigError, match="needs a vocabulary"):
        build_model(tiny_model_config, [])


def test_mobilenet_with_mlp_heads_encodes(tiny_model_config: ModelConfig) -> None:
    config = replace(
        tiny_model_config,
        image=ImageEncoderConfig(name="mobilenet_v1", pretrained=False, width_multiplier=0.25),
        head=HeadConfig(kind="mlp", hidden=(24, 16)),
        embed_dim=8,
    )
    model = build_model(config, TITLES)
    _check_embeddings(model.encode_images([Image.new("RGB", (30, 40), (200, 10, 10))]), 1, 8)
    _check_embeddings(model.encode_texts(TITLES), len(TITLES), 8)


def test_flip_average_encodes_a_photo_and_its_mirror_alike(
    tiny_model_config: ModelConfig,
) -> None:
    torch.manual_seed(0)
    plain = build_model(tiny_model_config, TITLES)
    averaged = build_model(replace(tiny_model_config, image_flip_average=True), TITLES)
    averaged.load_state_dict(plain.state_dict())
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
    mirror = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    one, other = plain.encode_images([photo, mirror])
    assert float(one @ other) < 0.9999  # the plain model tells them apart
    both = averaged.encode_images([photo, mirror])
    _check_embeddings(both, 2, 32)
    np.testing.assert_allclose(both[0], both[1], atol=1e-5)
    # the normalised mean of the plain model's two embeddings
    mean = (one + other) / np.linalg.norm(one + other)
    np.testing.assert_allclose(both[0], mean, atol=1e-5)
    # batching keeps photos apart: each row averages its own two views only
    many = averaged.encode_images([photo, mirror, *[Image.new("RGB", (30, 40), "red")] * 3], 2)
    np.testing.assert_allclose(many[:2], both, atol=1e-5)


def _unit(rows: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(rows, dim=-1)


@pytest.mark.parametrize("flip", [False, True])
def test_image_scales_sum_the_views_at_each_size(
    tiny_model_config: ModelConfig, flip: bool
) -> None:
    torch.manual_seed(0)
    plain = build_model(tiny_model_config, TITLES).eval()
    config = replace(tiny_model_config, image_flip_average=flip, image_scales=(1.25, 0.75))
    scaled = build_model(config, TITLES).eval()
    scaled.load_state_dict(plain.state_dict())
    pixels = torch.randn(3, 3, 32, 24)
    with torch.no_grad():
        got = scaled.embed_images(pixels)
        views = [pixels]
        for size in [(40, 30), (24, 18)]:  # 32x24 at 1.25 and 0.75
            views.append(torch.nn.functional.interpolate(pixels, size=size, mode="bilinear"))
        if flip:
            views += [view.flip(-1) for view in views]
        want = sum(_unit(plain.embed_images(view)) for view in views)
        assert len(views) == (6 if flip else 3)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        # each photo's views stay its own: one photo alone encodes as in the batch
        torch.testing.assert_close(scaled.embed_images(pixels[1:2]), got[1:2], atol=1e-5, rtol=0)


def test_image_scale_one_encodes_as_the_plain_model(tiny_model_config: ModelConfig) -> None:
    torch.manual_seed(0)
    plain = build_model(tiny_model_config, TITLES)
    scaled = build_model(replace(tiny_model_config, image_scales=(1.0,)), TITLES)
    scaled.load_state_dict(plain.state_dict())
    photos = [Image.new("RGB", (30, 40), (200, 10, 10)), Image.new("RGB", (60, 20), "navy")]
    np.testing.assert_allclose(scaled.encode_images(photos), plain.encode_images(photos), atol=1e-5)
