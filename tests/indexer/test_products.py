"""Product vectors (target "product") and "more like this" (ProductIndex.similar),
against brute-force numpy references."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import faiss
import numpy as np
import pytest
from indexer_fakes import SAMPLE_CATALOG, FakeEncoder, reference_for, sample_rows, unit_queries
from PIL import Image

from indexer import build_index, open_index, update_index, verify_index
from indexer.errors import TargetUnavailableError, UnknownProductError
from indexer.faiss_index import load_index, reconstruct
from indexer.info import describe_index
from indexer.manifest import PRODUCTS_INDEX
from indexer.publish import resolve_version_dir
from models.errors import ConfigError

ROWS = sample_rows()


def _ids(rows) -> list[list[str]]:
    return [[hit.id for hit in row] for row in rows]


def _stored_product_vectors(index_dir: Path, count: int) -> np.ndarray:
    """(count, D) vectors of products.faiss for nums 0..count-1, read back from disk."""
    index = load_index(resolve_version_dir(index_dir) / PRODUCTS_INDEX)
    return reconstruct(faiss.downcast_index(index), np.arange(count, dtype=np.int64))


def test_product_vectors_are_the_weighted_sum(
    tmp_path: Path, small_catalog: Path, fake_encoder: FakeEncoder
) -> None:
    out = tmp_path / "index"
    build_index(small_catalog, fake_encoder, out, product_weights=(0.7, 0.3), progress=False)
    reference = reference_for(small_catalog, fake_encoder)
    stored = _stored_product_vectors(out, len(reference.ids))
    np.testing.assert_allclose(stored, reference.products((0.7, 0.3)), atol=1e-6)
    with open_index(out) as index:
        assert index.manifest.product_weights == [0.7, 0.3]
        assert index.targets == ("image", "text", "product")
    assert "product = 0.7 x image + 0.3 x text" in describe_index(out)
    assert verify_index(out).ok


def test_bad_weights_fail_before_encoding(
    tmp_path: Path, small_catalog: Path, fake_encoder: FakeEncoder
) -> None:
    with pytest.raises(ConfigError, match="both be 0"):
        build_index(small_catalog, fake_encoder, tmp_path / "i", product_weights=(0, 0))
    assert fake_encoder.calls == 0


@pytest.mark.parametrize("index_type", ["Flat", "IVF4,Flat"])
def test_product_search_with_filters_returns_k_whenever_k_match(
    tmp_path: Path, small_catalog: Path, fake_encoder: FakeEncoder, index_type: str
) -> None:
    out = tmp_path / "index"
    # nprobe 1 of 4 lists: the selector search comes back short, the exact fallback fills in
    build_index(
        small_catalog,
        fake_encoder,
        out,
        index_type=index_type,
        search_params={"nprobe": 1} if "IVF" in index_type else None,
        progress=False,
    )
    reference = reference_for(small_catalog, fake_encoder)
    counts = Counter(a["articleType"] for a in reference.attributes)
    rare, common = min(counts, key=counts.get), max(counts, key=counts.get)
    queries = unit_queries(5, seed=7)
    with open_index(out) as index:
        for filters in [None, {"articleType": rare}, {"articleType": common}, {"gender": "Men"}]:
            expected = reference.search("products", queries, 10, filters)
            matching = len(reference.search("products", queries[:1], 1000, filters)[0])
            hits = index.search(queries, 10, filters, target="product")
            assert [len(row) for row in hits] == [min(10, matching)] * 5, filters
            allowed = {
                i for row in reference.search("products", queries, 1000, filters) for i, _ in row
            }
            assert {hit.id for row in hits for hit in row} <= allowed
            if index_type == "Flat":  # IVF with nprobe 1 is approximate, Flat exact
                assert _ids(hits) == [[i for i, _ in row] for row in expected], filters
            assert _ids(index.search_products(queries, 10, filters)) == _ids(hits)


def test_update_fuses_new_products_with_the_build_weights(
    tmp_path: Path, make_catalog, fake_encoder: FakeEncoder
) -> None:
    out = tmp_path / "index"
    build_index(make_catalog(ROWS[:30], "base"), fake_encoder, out, product_weights=(0.5, 0.5))
    update_index(out, fake_encoder, make_catalog(ROWS[20:45], "more"), progress=False)
    everything = make_catalog(ROWS[:45], "all")
    reference = reference_for(everything, fake_encoder)
    stored = _stored_product_vectors(out, 45)  # nums follow the order products arrived in
    np.testing.assert_allclose(stored, reference.products((0.5, 0.5)), atol=1e-6)
    with open_index(out) as index:
        assert index.manifest.product_weights == [0.5, 0.5]


def _catalog_with_duplicates(folder: Path) -> tuple[Path, dict[str, str]]:
    """40 sample products plus copies of product A: B has A's photo bytes (another title),
    C has A's title and A's picture saved again as PNG, D has A's title but another photo.
    Returns the catalogue and {letter: id}."""
    rows = [dict(row) for row in ROWS[:40]]
    (folder / "images").mkdir(parents=True)
    for row in rows:
        (folder / row["image"]).write_bytes((SAMPLE_CATALOG.parent / row["image"]).read_bytes())
    a = rows[0]
    png = io.BytesIO()
    Image.open(folder / a["image"]).save(png, format="PNG")
    (folder / "images" / "a-again.png").write_bytes(png.getvalue())
    copies = {
        "B": {**a, "id": "dup-b", "text": "Some Other Title Entirely"},
        "C": {**a, "id": "dup-c", "image": "images/a-again.png"},
        "D": {**a, "id": "dup-d", "image": rows[1]["image"]},
    }
    rows.extend(copies.values())
    path = folder / "catalog.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path, {"A": a["id"], **{letter: row["id"] for letter, row in copies.items()}}


@pytest.mark.parametrize("target", ["image", "product", "text"])
def test_similar_leaves_out_the_product_and_its_duplicates(
    tmp_path: Path, fake_encoder: FakeEncoder, target: str
) -> None:
    catalog, ids = _catalog_with_duplicates(tmp_path / "catalog")
    out = tmp_path / "index"
    build_index(catalog, fake_encoder, out, progress=False)
    reference = reference_for(catalog, fake_encoder)
    vectors = {
        "image": reference.images,
        "text": reference.texts,
        "product": reference.products(),
    }[target]
    own = vectors[reference.ids.index(ids["A"])]
    left_out = {ids["A"], ids["B"], ids["C"]}
    kept = [i for i in range(len(reference.ids)) if reference.ids[i] not in left_out]
    scores = vectors[kept] @ own
    expected = [reference.ids[kept[i]] for i in np.argsort(-scores, kind="stable")[:10]]
    with open_index(out) as index:
        hits = index.similar(ids["A"], 10, target=target)  # type: ignore[arg-type]
        assert [hit.id for hit in hits] == expected
        np.testing.assert_allclose([h.score for h in hits], np.sort(scores)[::-1][:10], atol=1e-5)
        everything = index.similar(ids["A"], 100, target=target)  # type: ignore[arg-type]
        assert {hit.id for hit in everything} == {reference.ids[i] for i in kept}
        assert ids["D"] in {hit.id for hit in everything}  # same title, another photo


def test_similar_with_filters_returns_k_whenever_k_match(
    tmp_path: Path, small_catalog: Path, fake_encoder: FakeEncoder
) -> None:
    out = tmp_path / "index"
    build_index(small_catalog, fake_encoder, out, index_type="IVF4,Flat", progress=False)
    reference = reference_for(small_catalog, fake_encoder)
    product_id = reference.ids[5]
    with open_index(out) as index:
        for name, value in [("gender", "Men"), ("gender", "Women"), ("articleType", "None")]:
            matching = {
                i for i, a in zip(reference.ids, reference.attributes) if a.get(name) == value
            } - {product_id}
            hits = index.similar(product_id, 5, {name: value}, target="product")
            assert len(hits) == min(5, len(matching)) and {h.id for h in hits} <= matching


def test_similar_to_an_unknown_product(built_index: Path) -> None:
    with open_index(built_index) as index, pytest.raises(UnknownProductError, match="nope"):
        index.similar("nope", 5)


def test_an_index_built_before_product_vectors_still_serves(
    tmp_path: Path, built_index: Path, make_catalog, fake_encoder: FakeEncoder, make_legacy_index
) -> None:
    legacy = make_legacy_index(built_index, tmp_path / "legacy")
    assert verify_index(legacy).ok
    assert "no product vectors" in describe_index(legacy)
    queries = unit_queries(2)
    with open_index(legacy) as index:
        assert index.targets == ("image", "text")
        assert len(index.search_images(queries, 5)[0]) == 5
        assert len(index.similar(index.search_texts(queries, 1)[0][0].id, 5)) == 5
        with pytest.raises(TargetUnavailableError, match="rebuild"):
            index.search(queries, 5, target="product")
        with pytest.raises(TargetUnavailableError, match="rebuild"):
            index.similar("anything", 5, target="product")
    update_index(legacy, fake_encoder, make_catalog(ROWS[60:70], "more"), progress=False)
    with open_index(legacy) as index:  # updated, still without product vectors
        assert len(index) == 70 and index.manifest.product_weights is None
    build_index(make_catalog(ROWS[:70], "all"), fake_encoder, legacy, progress=False)
    with open_index(legacy) as index:  # a rebuild adds them
        assert index.targets == ("image", "text", "product")
