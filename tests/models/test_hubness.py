"""models.hubness: the hubness statistic, the query gate, and the bank sample."""

from __future__ import annotations

import numpy as np
import pytest

import models.hubness
from models.hubness import hubness, is_specific, sample_bank


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((rows, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_hubness_is_the_mean_of_the_k_nearest_bank_cosines(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(models.hubness, "_CHUNK", 7)  # several chunks, one ragged
    gallery, bank = _unit(30, 16, 0), _unit(50, 16, 1)
    reference = np.sort(gallery.astype(np.float64) @ bank.T.astype(np.float64), axis=1)
    for k in (1, 5, 50):
        expected = reference[:, -k:].mean(axis=1)
        np.testing.assert_allclose(hubness(gallery, bank, k), expected, atol=1e-6)


def test_a_hub_scores_higher_than_an_outlier() -> None:
    bank = _unit(40, 8, 2)
    centre = bank.mean(axis=0) / np.linalg.norm(bank.mean(axis=0))
    gallery = np.stack([centre, -centre]).astype(np.float32)
    hub, outlier = hubness(gallery, bank, 10)
    assert hub > outlier


def test_small_and_empty_banks() -> None:
    gallery, bank = _unit(4, 8, 3), _unit(3, 8, 4)
    np.testing.assert_allclose(
        hubness(gallery, bank, 10), (gallery @ bank.T).mean(axis=1), atol=1e-6
    )
    assert not hubness(gallery, np.zeros((0, 8), np.float32)).any()
    with pytest.raises(ValueError, match="k must be at least 1"):
        hubness(gallery, bank, 0)
    with pytest.raises(ValueError, match="shapes do not match"):
        hubness(gallery, _unit(3, 6, 5))


def test_only_queries_of_enough_words_are_specific() -> None:
    assert not is_specific("Tshirts")
    assert not is_specific("  Navy   Blue ")
    assert is_specific("navy blue shirts")
    assert is_specific("Nike Men Navy Blue Running Shoes")
    assert is_specific("navy blue", min_words=2) and not is_specific("navy", min_words=2)


def test_the_bank_sample_is_seeded_distinct_and_sorted() -> None:
    texts = [f"title {i % 300}" for i in range(1000)]
    bank = sample_bank(texts, size=100, seed=3)
    assert bank == sample_bank(list(reversed(texts)), size=100, seed=3)
    assert len(bank) == len(set(bank)) == 100 and bank == sorted(bank)
    assert set(bank) <= set(texts)
    assert sample_bank(texts, size=100, seed=4) != bank
    assert sample_bank(texts[:50], size=100) == sorted(set(texts[:50]))


def test_a_model_without_a_bank_has_an_empty_one() -> None:
    from types import SimpleNamespace

    from models.hubness import query_bank_of

    assert query_bank_of(SimpleNamespace(query_bank=["nike men shoes"])) == ["nike men shoes"]
    assert query_bank_of(SimpleNamespace(query_bank=[])) == []
    assert query_bank_of(object()) == []  # a fake encoder without the attribute


def test_int8_packing_keeps_cosines_within_a_few_thousandths() -> None:
    from models.hubness import pack_vectors, unpack_vectors

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((200, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    codes, scales = pack_vectors(vectors)
    assert codes.dtype == np.int8 and codes.shape == (200, 64) and scales.shape == (200,)
    back = unpack_vectors(codes, scales)
    np.testing.assert_allclose(np.linalg.norm(back, axis=1), 1.0, rtol=1e-5)
    queries = rng.standard_normal((20, 64)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    assert np.abs(queries @ back.T - queries @ vectors.T).max() < 5e-3
    # a zero row stays zero; non-finite input is refused
    zero_codes, zero_scales = pack_vectors(np.zeros((1, 4), np.float32))
    assert not unpack_vectors(zero_codes, zero_scales).any()
    with pytest.raises(ValueError, match="finite"):
        pack_vectors(np.array([[np.nan, 1.0]], np.float32))


def test_the_photo_bank_encodes_a_seeded_sample_of_the_photos() -> None:
    from models.hubness import encode_photo_bank, sample_rows

    rows = sample_rows(50, 10, seed=1)
    assert rows == sorted(set(rows)) and len(rows) == 10 and rows == sample_rows(50, 10, seed=1)
    assert sample_rows(50, 10, seed=2) != rows
    assert sample_rows(5, 10) == [0, 1, 2, 3, 4]

    class Recording:
        def __init__(self) -> None:
            self.seen: list[str] = []

        def encode_images(self, images, batch_size=64):  # noqa: ANN001, ANN202
            self.seen = list(images)
            return np.ones((len(images), 3), dtype=np.float32)

    photos = [f"photo-{i}.jpg" for i in range(50)]
    model = Recording()
    bank = encode_photo_bank(model, photos, size=10, seed=1)
    assert bank.shape == (10, 3)
    assert model.seen == [photos[i] for i in rows]


def test_a_model_without_a_photo_bank_has_none() -> None:
    from types import SimpleNamespace

    from models.hubness import photo_bank_of

    assert photo_bank_of(object()) is None
    assert photo_bank_of(SimpleNamespace(photo_bank=np.zeros((0, 4)))) is None
    bank = photo_bank_of(SimpleNamespace(photo_bank=np.eye(2, 4)))
    assert bank is not None and bank.dtype == np.float32 and bank.shape == (2, 4)
