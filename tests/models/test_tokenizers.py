"""models.tokenizers: the seed's word split, vocabulary, UNK and padding; MiniLM's
WordPiece as transformers runs it; numpy int64 output, tensors only in JointModel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models import ArtifactError, JointModel
from models.tokenizers import (
    PAD,
    UNK,
    MiniLMTokenizer,
    WordTokenizer,
    length_sorted_batches,
    minilm_path,
    offline_hub,
    split_words,
)


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
    assert out["input_ids"].dtype == np.int64 and out["attention_mask"].dtype == np.int64
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
        np.testing.assert_array_equal(loaded(texts)[name], tensor)


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
        np.testing.assert_array_equal(tokens["input_ids"], full["input_ids"][:, :width])
        assert full["attention_mask"][:, width:].sum() == 0
    assert list(length_sorted_batches(tokenizer, [], batch_size=2)) == []


def test_text_embeddings_do_not_depend_on_the_batching(tiny_model: JointModel) -> None:
    texts = ["Turtle Check Men Navy Blue Shirt", "red", "Puma Women Black Running Shoes", "a b"]
    alone = np.concatenate([tiny_model.encode_texts([text]) for text in texts])
    for batch_size in (1, 3, 256):
        np.testing.assert_allclose(
            tiny_model.encode_texts(texts, batch_size=batch_size), alone, atol=1e-6
        )


MINILM_TEXTS = [
    "Turtle Check Men Navy Blue Shirt",
    "Puma Women Black Running Shoes",
    "",
    " ",
    "MEN'S T-SHIRT!!! (2-pack) #1 @home",
    "Café Crème Brûlée  naïve",
    "日本語のテキスト",
    "emoji 👗👠 and \uff26\uff55\uff4c\uff4c width",
    "\t\n x \u200b y",
    " ".join(["word"] * 80),
    "a" * 300,
]


@pytest.mark.parametrize("max_length", [8, 48])
def test_minilm_tokens_are_transformers_tokens(max_length: int) -> None:
    """The `tokenizers` library runs tokenizer.json as transformers' AutoTokenizer does:
    the same ids and mask, padded to the longest, truncated at max_length."""
    offline_hub()
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)
    expected = reference(
        MINILM_TEXTS, padding=True, truncation=True, max_length=max_length, return_tensors="np"
    )
    out = MiniLMTokenizer(max_length)(MINILM_TEXTS)
    assert set(out) == {"input_ids", "attention_mask"}
    for name, ids in out.items():
        assert ids.dtype == np.int64
        np.testing.assert_array_equal(ids, expected[name])
    assert out["input_ids"].shape[1] == max_length  # the long texts are cut


def test_joint_model_tokenize_gives_tensors_on_its_device(tiny_model: JointModel) -> None:
    tokens = tiny_model.tokenize(["red shirt", "blue"])
    raw = tiny_model.tokenizer(["red shirt", "blue"])
    for name, tensor in tokens.items():
        assert tensor.dtype == torch.long and tensor.device == tiny_model.device
        np.testing.assert_array_equal(tensor.numpy(), raw[name])
