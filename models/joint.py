"""The joint embedding model: an image tower and a text tower, each with a projection
into one space of `embed_dim`, where a photo and its title land close together."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.config import ModelConfig
from models.heads import build_head
from models.image_encoders import build_image_encoder
from models.text_encoders import build_text_encoder
from models.tokenizers import (
    MiniLMTokenizer,
    Tokenizer,
    Tokens,
    WordTokenizer,
    length_sorted_batches,
)
from models.transforms import ImageInput, ImageTransform


class JointModel(nn.Module):
    """Deep CMPL's two-tower model (also the shape of the Siamese and Correlational nets).

    `embed_*` are the raw, differentiable projections used in training;
    `encode_*` are batched, gradient-free, L2-normalised numpy embeddings for serving.
    """

    def __init__(self, config: ModelConfig, tokenizer: Tokenizer) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.transform = ImageTransform(config.preprocess)
        vocab_size = len(tokenizer) if isinstance(tokenizer, WordTokenizer) else 0
        self.image_tower = build_image_encoder(config.image)
        self.text_tower = build_text_encoder(config.text, vocab_size)
        self.image_head = build_head(config.head, self.image_tower.feature_dim, config.embed_dim)
        self.text_head = build_head(config.head, self.text_tower.feature_dim, config.embed_dim)
        self.model_id = "untrained"  # the artifact loader sets the content hash
        self.metrics: dict[str, object] = {}  # and the artifact's metrics.json
        self.query_bank: list[str] = []  # and its query bank (models.hubness)
        self.photo_bank: np.ndarray | None = None  # and its photo bank

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def embed_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised pixels -> (B, embed_dim), not normalised.

        With `image_flip_average` or `image_scales`, the sum of the normalised
        embeddings of every view: the photo at its size and at each scale, and with
        `image_flip_average` each of those mirrored too (one tower pass per size), so a
        photo and its mirror encode alike.
        """
        flip, scales = self.config.image_flip_average, self.config.image_scales
        if not flip and not scales:
            return self.image_head(self.image_tower(pixels))
        views: list[torch.Tensor] = []
        for sized in [pixels, *(self._rescaled(pixels, scale) for scale in scales)]:
            batch = torch.cat([sized, sized.flip(-1)]) if flip else sized
            embedded = F.normalize(self.image_head(self.image_tower(batch)), dim=-1)
            views.extend(embedded.chunk(2) if flip else [embedded])
        return torch.stack(views).sum(0)

    def _rescaled(self, pixels: torch.Tensor, scale: float) -> torch.Tensor:
        """`pixels` resized by `scale` from the preprocessed size (bilinear; without
        antialiasing, which ONNX opset 17 cannot express, so scales below about 0.7
        alias)."""
        preprocess = self.config.preprocess
        size = (max(1, round(preprocess.height * scale)), max(1, round(preprocess.width * scale)))
        return F.interpolate(pixels, size=size, mode="bilinear", align_corners=False)

    def embed_texts(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        """Tokenizer output of B texts -> (B, embed_dim), not normalised."""
        return self.text_head(self.text_tower(**tokens))

    def forward(
        self,
        pixels: torch.Tensor,
        tokens: dict[str, torch.Tensor],
        *,
        image_from_block: int = 0,
        extra_tokens: Sequence[dict[str, torch.Tensor]] = (),
    ) -> tuple[torch.Tensor, ...]:
        """Training pass (DDP hooks need one forward):
        -> image features (B, Fi), text features (B, Ft), image and text embeddings
        (B, D), then one (U_k, D) text embedding per entry of `extra_tokens` (shopper
        queries trained beside the titles, each batch tokenized on its own so short
        queries are not padded to a title's length).

        With `image_from_block` > 0, `pixels` are precomputed activations of the image
        tower's first blocks (EfficientNet towers only).
        """
        if image_from_block:
            image_features = self.image_tower.forward_from(pixels, image_from_block)
        else:
            image_features = self.image_tower(pixels)
        text_features = self.text_tower(**tokens)
        extra = tuple(self.embed_texts(more) for more in extra_tokens)
        return (
            image_features,
            text_features,
            self.image_head(image_features),
            self.text_head(text_features),
            *extra,
        )

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """The tokenizer's int64 arrays as tensors on the model's device."""
        return self.to_device(self.tokenizer(texts))

    def to_device(self, tokens: Tokens) -> dict[str, torch.Tensor]:
        """Tokenizer output (numpy) -> tensors on the model's device."""
        device = self.device
        return {name: torch.from_numpy(t).to(device) for name, t in tokens.items()}

    def preprocess(self, image: ImageInput) -> np.ndarray:
        """A photo -> the (3, H, W) float32 array `encode_images` takes as it is: decode
        and preprocess once, where it suits the caller (a decoding thread or process)."""
        return self.transform.prepare(image)

    @torch.inference_mode()
    def encode_images(self, images: Sequence[ImageInput], batch_size: int = 64) -> np.ndarray:
        """Photos (paths, bytes, PIL images or `preprocess` arrays) -> (N, embed_dim)
        float32, L2-normalised.

        Raises ImageDecodeError naming the first image that cannot be decoded.
        """
        self.eval()
        chunks = [np.zeros((0, self.embed_dim), dtype=np.float32)]
        for start in range(0, len(images), batch_size):
            batch = self.transform.prepare_batch(images[start : start + batch_size])
            pixels = torch.from_numpy(batch).to(self.device)
            chunks.append(self._normalised(self.embed_images(pixels)))
        return np.concatenate(chunks)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Titles or queries -> (N, embed_dim) float32, L2-normalised."""
        self.eval()
        out = np.zeros((len(texts), self.embed_dim), dtype=np.float32)
        for rows, tokens in length_sorted_batches(self.tokenizer, texts, batch_size):
            out[rows] = self._normalised(self.embed_texts(self.to_device(tokens)))
        return out

    @staticmethod
    def _normalised(embeddings: torch.Tensor) -> np.ndarray:
        return F.normalize(embeddings.float(), dim=-1).cpu().numpy().astype(np.float32, copy=False)


def build_tokenizer(config: ModelConfig, texts: Sequence[str] = ()) -> Tokenizer:
    """The tokenizer a config asks for; a word vocabulary is built from `texts`."""
    if config.text.name == "minilm":
        return MiniLMTokenizer(config.text.max_length)
    return WordTokenizer.build(
        texts, min_count=config.text.min_count, max_length=config.text.max_length
    )


def build_model(config: ModelConfig, texts: Sequence[str] = ()) -> JointModel:
    """A fresh model (pretrained towers where the config says so) for training."""
    return JointModel(config, build_tokenizer(config, texts))
