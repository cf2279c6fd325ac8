"""training.evaluate: the seed and catalog protocols on a hand-checked four-product case.

A stand-in encoder returns fixed vectors, so every rank below can be worked out by hand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from models import Product
from training.evaluate import (
    evaluate_catalog,
    evaluate_categories,
    evaluate_seed,
    format_categories,
    format_table,
    selection_score,
)

A1, A2, B1, C1 = (
    Product("A1", Path("/p/A1.jpg"), "a"),
    Product("A2", Path("/p/A2.jpg"), "a"),
    Product("B1", Path("/p/B1.jpg"), "b"),
    Product("C1", Path("/p/C1.jpg"), "c"),
)
GALLERY = [A1, A2, B1, C1]
# image embeddings are one-hot, so a title's vector lists its score against A1, A2, B1, C1
IMAGES = {p.image: row for p, row in zip(GALLERY, np.eye(4, dtype=np.float32), strict=True)}
TEXTS = {
    "a": np.array([0.9, 0.5, 0.7, 0.1], np.float32),  # ranks A1, B1, A2, C1
    "b": np.array([0.2, 0.1, 0.9, 0.3], np.float32),  # ranks B1 first
    "c": np.array([1.0, 0.0, 0.0, 1.0], np.float32),  # ties A1 and C1: gallery order puts A1 first
}


class FixedEncoder:
    def encode_images(self, images: Sequence[Path], batch_size: int = 64) -> np.ndarray:
        return np.stack([IMAGES[Path(image)] for image in images])

    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        return np.stack([TEXTS[text] for text in texts])


def test_catalog_protocol() -> None:
    results = evaluate_catalog(FixedEncoder(), [A1, B1], GALLERY)  # type: ignore[arg-type]
    t2i, i2t = results["text_to_image"], results["image_to_text"]
    # queries: titles a (relevant A1 at rank 1, A2 at rank 3) and b (B1 at rank 1)
    assert t2i["queries"] == 2 and t2i["gallery"] == 4
    assert t2i["R@1"] == pytest.approx((1 / 2 + 1) / 2)  # share of the title's products found
    assert t2i["R@5"] == 1.0
    assert t2i["mAP"] == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    assert t2i["MRR@10"] == 1.0 and t2i["median_rank"] == 1.0
    # query photos A1 and B1 against the distinct titles a, b, c: A1 scores c (1.0) above a (0.9)
    assert i2t["queries"] == 2 and i2t["gallery"] == 3
    assert i2t["R@1"] == 0.5 and i2t["MRR@10"] == 0.75 and i2t["median_rank"] == 1.5
    # query products that are not the gallery's own objects are encoded separately: same result
    copies = [dataclasses.replace(A1), dataclasses.replace(B1)]
    assert evaluate_catalog(FixedEncoder(), copies, GALLERY) == results  # type: ignore[arg-type]


def test_seed_protocol() -> None:
    results = evaluate_seed(FixedEncoder(), GALLERY)  # type: ignore[arg-type]
    t2i, i2t = results["text_to_image"], results["image_to_text"]
    # every product's title against every photo: first relevant ranks A1 1, A2 1, B1 1, C1 2
    assert (
        t2i["R@1"] == 0.75 and t2i["MRR@10"] == pytest.approx(0.875) and t2i["median_rank"] == 1.0
    )
    assert t2i["mAP"] == pytest.approx((5 / 6 + 5 / 6 + 1 + 1 / 2) / 4)
    # every photo against every product's title: A1's photo ranks c's title first
    assert i2t["R@1"] == 0.75 and i2t["mAP"] == pytest.approx(((1 / 2 + 2 / 3) / 2 + 3) / 4)
    for direction in results.values():
        assert direction["gallery"] == 4 and direction["queries"] == 4
        assert direction["median_rank_pct"] == pytest.approx(100 * direction["median_rank"] / 4)


def test_seed_protocol_samples_a_seeded_gallery() -> None:
    products = [Product(f"p{i}", GALLERY[i % 4].image, GALLERY[i % 4].text) for i in range(12)]
    first = evaluate_seed(FixedEncoder(), products, gallery_size=5, seed=3)  # type: ignore[arg-type]
    assert first == evaluate_seed(FixedEncoder(), products, gallery_size=5, seed=3)  # type: ignore[arg-type]
    assert first["text_to_image"]["gallery"] == 5


def test_format_table_has_a_row_per_direction() -> None:
    table = format_table(evaluate_seed(FixedEncoder(), GALLERY), "title line")  # type: ignore[arg-type]
    lines = table.splitlines()
    assert lines[0] == "title line" and "R@1" in lines[1] and "MRR@10" in lines[1]
    assert lines[2].startswith("text_to_image") and lines[3].startswith("image_to_text")


def test_random_recall_matches_enumerating_every_ranking() -> None:
    import itertools

    from training.evaluate import random_recall_at

    titles = ["a", "a", "b", "c", "d"]
    k = 2
    hits = total = 0
    for order in itertools.permutations(range(len(titles))):
        for query in titles:
            hits += any(titles[i] == query for i in order[:k])
            total += 1
    assert abs(random_recall_at(titles, k) - hits / total) < 1e-12


def test_category_tasks_on_a_hand_made_gallery() -> None:
    shirt = {"masterCategory": "Apparel", "articleType": "Shirts", "baseColour": "Blue"}
    watch = {"masterCategory": "Accessories", "articleType": "Watches", "baseColour": "Black"}
    gallery = [
        Product("s1", Path("/p/s1.jpg"), "s1", shirt),
        Product("w1", Path("/p/w1.jpg"), "w1", watch),
        Product("s2", Path("/p/s2.jpg"), "s2", {**shirt, "baseColour": "Black"}),
        Product("x", Path("/p/x.jpg"), "x", {"articleType": "NA"}),
    ]
    photos = np.eye(4, dtype=np.float32)  # photo i is the unit vector e_i

    class ValueEncoder:
        # a value's vector is its score against s1, w1, s2, x
        rows = {
            "Shirts": [0.9, 0.8, 0.1, 0.0],  # ranks s1, w1, s2, x: relevant at 1 and 3
            "Watches": [0.2, 0.1, 0.9, 0.0],  # ranks s2, s1, w1: relevant at 3
            "Apparel": [0.5, 0.0, 0.6, 0.0],  # ranks s2, s1: both relevant
            "Blue": [0.0, 1.0, 0.0, 0.5],  # ranks w1, x, s1: relevant at 3
            "Black": [0.0, 0.9, 1.0, 0.0],  # s2, w1: both relevant
            "Accessories": [0.0, 1.0, 0.0, 0.0],
        }

        def encode_texts(self, texts, batch_size=256):  # noqa: ANN001, ANN202
            return np.array([self.rows[t] for t in texts], dtype=np.float32)

    queries = gallery[:2]  # values of s1 and w1 query: s2's extra value "Black" does not
    results = evaluate_categories(ValueEncoder(), queries, gallery, gallery_embeddings=photos)  # type: ignore[arg-type]
    assert set(results) == {"masterCategory", "articleType", "baseColour"}  # no subCategory
    article = results["articleType"]
    assert article["queries"] == 2
    assert article["P@1"] == pytest.approx((1 + 0) / 2)
    assert article["P@10"] == pytest.approx((2 / 10 + 1 / 10) / 2)
    assert article["MRR"] == pytest.approx((1 + 1 / 3) / 2)
    colour = results["baseColour"]  # queries Black (relevant w1, s2) and Blue (s1)
    assert colour["P@1"] == pytest.approx((1 + 0) / 2)
    assert colour["MRR"] == pytest.approx((1 + 1 / 3) / 2)
    assert results["masterCategory"]["P@1"] == 1.0
    assert selection_score({"R@10": 0.25}, results) == pytest.approx(
        0.25 + np.mean([m["P@10"] for m in results.values()])
    )
    assert "articleType" in format_categories(results)


def test_the_correction_lowers_hubs_for_long_queries_only() -> None:
    from training.evaluate import Correction

    # photo 0 is a hub: close to every bank query; photo 1 to none
    bank = np.array([[0.8, 0.6], [0.6, 0.8]], dtype=np.float32)
    gallery = np.array(
        [[np.sqrt(0.5), np.sqrt(0.5)], [np.sqrt(0.5), -np.sqrt(0.5)]], dtype=np.float32
    )
    correction = Correction(bank, alpha=0.5, k=2)
    scores = np.array([[0.50, 0.45], [0.50, 0.45]], dtype=np.float32)
    corrected = correction.apply(scores, ["navy blue running shoes", "Shoes"], gallery)
    hub = 0.5 * (gallery @ bank.T).mean(axis=1)  # alpha * hubness
    np.testing.assert_allclose(corrected[0], scores[0] - hub, atol=1e-6)
    assert corrected[0, 1] > corrected[0, 0]  # the hub falls below the other photo
    np.testing.assert_array_equal(corrected[1], scores[1])  # one word: untouched
    assert correction.describe() == {
        "alpha": 0.5,
        "k": 2,
        "min_words": 3,
        "bank": 2,
        "photo_bank": 0,
    }
    # without a photo bank, photo queries rank by cosine
    np.testing.assert_array_equal(correction.apply_photos(scores, gallery), scores)


def test_the_photo_bank_lowers_titles_that_sit_close_to_every_photo() -> None:
    from training.evaluate import Correction

    # title 0 is a hub: close to both bank photos; title 1 to neither
    photos = np.array([[0.8, 0.6], [0.6, 0.8]], dtype=np.float32)
    titles = np.array([[np.sqrt(0.5), np.sqrt(0.5)], [np.sqrt(0.5), -np.sqrt(0.5)]], np.float32)
    correction = Correction(None, alpha=0.5, k=2, photo_bank=photos)
    scores = np.array([[0.50, 0.45], [0.30, 0.10]], dtype=np.float32)
    corrected = correction.apply_photos(scores, titles)
    hub = 0.5 * (titles @ photos.T).mean(axis=1)
    np.testing.assert_allclose(corrected, scores - hub[None, :], atol=1e-6)
    assert corrected[0, 1] > corrected[0, 0]  # the hub title falls below the other
    # text queries have no bank here: untouched, however long
    np.testing.assert_array_equal(correction.apply(scores, ["a b c", "d e f"], titles), scores)
    assert correction.describe()["photo_bank"] == 2


def test_seed_protocol_corrects_image_to_text_with_the_photo_bank() -> None:
    from training.evaluate import Correction, evaluate_seed

    # two products whose photos both sit nearer title 0 (a hub) than their own title
    titles = {"red dress": [1.0, 0.0, 0.0], "blue jeans": [0.6, 0.8, 0.0]}
    photos = {"red dress": [0.9, 0.1, 0.42], "blue jeans": [0.9, 0.3, 0.3]}

    class Fixed:
        embed_dim = 3

        def encode_images(self, images, batch_size=64):  # noqa: ANN001, ANN202
            rows = np.array([photos[i] for i in images], dtype=np.float32)
            return rows / np.linalg.norm(rows, axis=1, keepdims=True)

        def encode_texts(self, texts, batch_size=256):  # noqa: ANN001, ANN202
            return np.array([titles[t] for t in texts], dtype=np.float32)

    products = [Product(id=t, text=t, image=t) for t in titles]
    plain = evaluate_seed(Fixed(), products)  # type: ignore[arg-type]
    assert plain["image_to_text"]["R@1"] == pytest.approx(0.5)  # both photos pick "red dress"
    # a photo bank near "red dress" only: its title is lowered for every photo query
    bank = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    correction = Correction(None, alpha=0.5, k=1, photo_bank=bank)
    fixed = evaluate_seed(Fixed(), products, correction=correction)  # type: ignore[arg-type]
    assert fixed["image_to_text"]["R@1"] == pytest.approx(1.0)
    assert fixed["text_to_image"] == plain["text_to_image"]  # no query bank: untouched


def test_correction_of_a_model_needs_its_bank_and_a_positive_alpha() -> None:
    from training.evaluate import Correction

    class Banked:
        query_bank = ["nike men shoes", "puma women tee"]

        def encode_texts(self, texts, batch_size=256):  # noqa: ANN001, ANN202
            return np.eye(len(texts), 4, dtype=np.float32)

    correction = Correction.of(Banked())  # type: ignore[arg-type]
    assert correction is not None and correction.bank is not None
    assert correction.bank.shape == (2, 4) and correction.photo_bank is None
    assert Correction.of(Banked(), alpha=0.0) is None  # type: ignore[arg-type]
    Banked.query_bank = []
    assert Correction.of(Banked()) is None  # type: ignore[arg-type]
    Banked.photo_bank = np.eye(3, 4, dtype=np.float32)  # type: ignore[attr-defined]
    photo_only = Correction.of(Banked())  # type: ignore[arg-type]
    assert photo_only is not None and photo_only.bank is None
    assert photo_only.photo_bank is not None and photo_only.photo_bank.shape == (3, 4)


def test_the_correction_measures_a_gallery_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import training.evaluate
    from training.evaluate import Correction

    calls = []
    real = training.evaluate.hubness

    def counting(gallery, bank, k):  # type: ignore[no-untyped-def]
        calls.append(len(gallery))
        return real(gallery, bank, k)

    monkeypatch.setattr(training.evaluate, "hubness", counting)
    correction = Correction(np.eye(3, 4, dtype=np.float32), alpha=0.5, k=2)
    gallery, other = np.eye(5, 4, dtype=np.float32), np.eye(2, 4, dtype=np.float32)
    for _ in range(3):  # the title task and the category tasks share the gallery
        correction.apply(np.zeros((1, 5), np.float32), ["a long query"], gallery)
    once = correction.apply(np.zeros((1, 2), np.float32), ["a long query"], other)
    assert calls == [5, 2]
    np.testing.assert_allclose(once[0], -0.5 * real(other, np.eye(3, 4, dtype=np.float32), 2))
