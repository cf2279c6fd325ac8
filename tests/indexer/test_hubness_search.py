"""ProductIndex.set_hubness and corrected searches, against a brute-force reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from indexer_fakes import FakeEncoder, reference_for, unit_queries

from indexer import open_index
from models.hubness import hubness

ALPHA = 0.7


def _corrected_reference(ref, kind: str, queries: np.ndarray, bank: np.ndarray, k: int, filters):  # type: ignore[no-untyped-def]
    vectors = {"images": ref.images, "texts": ref.texts}.get(kind)
    vectors = ref.products() if vectors is None else vectors
    r = hubness(vectors.astype(np.float32), bank, 10).astype(np.float64)
    mask = np.ones(len(ref.ids), dtype=bool)
    for name, wanted in (filters or {}).items():
        mask &= np.array([a.get(name) == wanted for a in ref.attributes])
    rows = []
    for scores in queries.astype(np.float64) @ vectors.T - ALPHA * r[None, :]:
        order = [i for i in np.argsort(-scores, kind="stable") if mask[i]][:k]
        rows.append([(ref.ids[i], float(scores[i])) for i in order])
    return rows


@pytest.mark.parametrize("scan", ["faiss", "float32", "pca"])
@pytest.mark.parametrize("filters", [None, {"gender": "Men"}])
def test_corrected_search_ranks_by_cosine_minus_alpha_hubness(
    built_index: Path, small_catalog: Path, fake_encoder: FakeEncoder, scan: str, filters
) -> None:  # type: ignore[no-untyped-def]
    ref = reference_for(small_catalog, fake_encoder)
    bank = unit_queries(40, seed=7)
    queries = unit_queries(6, seed=8)
    with open_index(built_index, scan=scan) as index:  # type: ignore[arg-type]
        assert index.hubness_targets == ()
        plain = index.search(queries, 5, filters, target="image")
        assert index.search(queries, 5, filters, target="image", corrected=True) == plain
        index.set_hubness(bank, alpha=ALPHA)
        assert index.hubness_targets == ("image", "product")
        for target, kind in (("image", "images"), ("product", "products")):
            # 60 products: the candidates (k + 100) are all of them, so the re-ranking is exact
            rows = index.search(queries, 5, filters, target=target, corrected=True)
            expected = _corrected_reference(ref, kind, queries, bank, 5, filters)
            for got, want in zip(rows, expected, strict=True):
                assert [h.id for h in got] == [i for i, _ in want]
                np.testing.assert_allclose([h.score for h in got], [s for _, s in want], atol=1e-4)
        # uncorrected searches and the titles' target do not move
        assert index.search(queries, 5, filters, target="image") == plain
        texts = index.search(queries, 5, filters, target="text")
        assert index.search(queries, 5, filters, target="text", corrected=True) == texts


def test_the_correction_changes_the_ranking_and_alpha_zero_turns_it_off(built_index: Path) -> None:
    bank = unit_queries(40, seed=7)
    queries = unit_queries(20, seed=9)
    with open_index(built_index) as index:
        plain = [[h.id for h in row] for row in index.search(queries, 10, target="image")]
        index.set_hubness(bank, alpha=2.0)
        moved = [
            [h.id for h in row] for row in index.search(queries, 10, target="image", corrected=True)
        ]
        assert moved != plain
        index.set_hubness(bank, alpha=0.0)
        assert index.hubness_targets == ()
        off = [
            [h.id for h in row] for row in index.search(queries, 10, target="image", corrected=True)
        ]
        assert off == plain
        with pytest.raises(ValueError, match="alpha must not be negative"):
            index.set_hubness(bank, alpha=-0.1)


@pytest.mark.parametrize("scan", ["faiss", "float32"])
def test_a_photo_bank_corrects_the_titles_target_only(
    built_index: Path, small_catalog: Path, fake_encoder: FakeEncoder, scan: str
) -> None:
    ref = reference_for(small_catalog, fake_encoder)
    bank, photo_bank = unit_queries(40, seed=7), unit_queries(30, seed=11)
    queries = unit_queries(6, seed=8)
    with open_index(built_index, scan=scan) as index:  # type: ignore[arg-type]
        photos_plain = index.search(queries, 5, target="image", corrected=True)
        index.set_hubness(None, photo_bank=photo_bank, alpha=ALPHA)
        assert index.hubness_targets == ("text",)
        rows = index.search(queries, 5, target="text", corrected=True)
        expected = _corrected_reference(ref, "texts", queries, photo_bank, 5, None)
        for got, want in zip(rows, expected, strict=True):
            assert [h.id for h in got] == [i for i, _ in want]
            np.testing.assert_allclose([h.score for h in got], [s for _, s in want], atol=1e-4)
        # no text bank: photos rank by cosine even when asked to correct
        assert index.search(queries, 5, target="image", corrected=True) == photos_plain
        index.set_hubness(bank, photo_bank=photo_bank, alpha=ALPHA)
        assert index.hubness_targets == ("image", "product", "text")
        index.set_hubness(bank, photo_bank=np.zeros((0, queries.shape[1]), np.float32))
        assert index.hubness_targets == ("image", "product")
