"""models.tokenizers.WordTokenizer: the seed's word split, vocabulary, UNK and padding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models import ArtifactError, JointModel
from models.tokenizers import PAD, UNK, WordTokenizer, length_sorted_batches, split_words


def test_split_words_lower_cases_and_splits_punctuation() -> None:
    assert split_words("Navy-Blue Shirt,") == ["navy", "-", "blue", "shirt", ","]
    assert split_words("  Men's  T-Shirt (2 pack)") == [
        "men",
        "'",
        "s",
        "t",
        "-",
        "shirt",
        "(",
        "2",
        "pack",
        ")",
    ]
    assert split_words("") == []


def test_vocabulary_is_sorted_after_pad_and_unk_and_respects_min_count() -> None:
    tokenizer = WordTokenizer.build(["Red Shirt", "blue shirt", "Red Cap"], min_count=2)
    assert tokenizer.words == [PAD, UNK, "red", "shirt"]
    assert len(WordTokenizer.build(["Red Shirt", "blue shirt", "Red Cap"])) == 2 + 4


def test_ids_unknown_words_padding_and_mask() -> None:
    tokenizer = WordTokenizer.build(["red shirt", "blue cap"])
    index = tokenizer.index
    out = tokenizer(["Red Shirt", "green cap, blue", ""])
    unk = index[UNK]
    assert out["input_ids"].dtype == torch.long and out["attention_mask"].dtype == torch.long
    assert out["input_ids"].tolist() == [
        [index["red"], index["shirt"], 0, 0],
        [unk, index["cap"], unk, index["blue"]],  # "green" and "," are not in the vocabulary
        [unk, 0, 0, 0],  # an empty text becomes one UNK so every row has a token
    ]
    assert out["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]


def test_max_length_truncates() -> None:
    tokenizer = WordTokenizer.build(["a b c d e f"], max_length=3)
    out = tokenizer(["a b c d e f", "a"])
    assert out["input_ids"].shape == (2, 3)
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    tokenizer = WordTokenizer.build(["Red Shirt", "Blue Cap"], max_length=7)
    tokenizer.save(tmp_path / "vocab.json")
    loaded = WordTokenizer.load(tmp_path / "vocab.json")
    assert loaded.words == tokenizer.words and loaded.max_length == 7
    texts = ["red cap", "unknown words here"]
    for name, tensor in tokenizer(texts).items():
        assert torch.equal(loaded(texts)[name], tensor)


def test_bad_vocabularies_raise_artifact_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="must start with <pad>, <unk>"):
        WordTokenizer(["red", "shirt"])
    (tmp_path / "vocab.json").write_text('{"words": ["<pad>", "<unk>"]}', encoding="utf-8")
    with pytest.raises(ArtifactError, match="cannot read the vocabulary"):
        WordTokenizer.load(tmp_path / "vocab.json")
    with pytest.raises(ArtifactError, match="cannot read the vocabulary"):
        WordTokenizer.load(tmp_path / "absent.json")


def test_length_sorted_batches_cover_every_text_once_trimmed_to_their_longest() -> None:
    texts = ["a", "a b c d e", "a b", "a b c", "", "a b c d e f g"]
    tokenizer = WordTokenizer.build(texts)
    batches = list(length_sorted_batches(tokenizer, texts, batch_size=2))
    assert sorted(row for rows, _ in batches for row in rows) == list(range(len(texts)))
    assert [rows for rows, _ in batches] == [[5, 1], [3, 2], [0, 4]]  # longest first
    assert [tokens["input_ids"].shape[1] for _, tokens in batches] == [7, 3, 1]
    for rows, tokens in batches:  # each row keeps its own tokens, only padding is cut
        full = tokenizer([texts[r] for r in rows])
        width = tokens["input_ids"].shape[1]
        assert torch.equal(tokens["input_ids"], full["input_ids"][:, :width])
        assert full["attention_mask"][:, width:].sum() == 0
    assert list(length_sorted_batches(tokenizer, [], batch_size=2)) == []


def test_text_embeddings_do_not_depend_on_the_batching(tiny_model: JointModel) -> None:
    texts = ["Turtle Check Men Navy Blue Shirt", "red", "Puma Women Black Running Shoes", "a b"]
    alone = np.concatenate([tiny_model.encode_texts([text]) for text in texts])
    for batch_size in (1, 3, 256):
        np.testing.assert_allclose(
            tiny_model.encode_texts(texts, batch_size=batch_size), alone, atol=1e-6
        )
