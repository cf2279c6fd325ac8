"""indexer.update: add, replace and delete products, publishing a new version each time."""

from __future__ import annotations

from pathlib import Path

import pytest
from indexer_fakes import FakeEncoder, Reference, reference_for, sample_rows, unit_queries

from indexer import build_index, open_index, update_index, verify_index
from indexer.errors import (
    IndexCorruptError,
    IndexerError,
    IndexNotFoundError,
    ModelMismatchError,
    UnknownProductError,
)
from indexer.manifest import STORE_NAME
from indexer.publish import list_versions, resolve_version_dir
from indexer.store import ProductStore

ROWS = sample_rows()


def _expected(reference: Reference, kind: str, queries, k: int, filters=None) -> list[list[str]]:
    return [[i for i, _ in row] for row in reference.search(kind, queries, k, filters)]


def _ids(rows) -> list[list[str]]:
    return [[hit.id for hit in row] for row in rows]


@pytest.fixture
def base(tmp_path: Path, make_catalog, fake_encoder: FakeEncoder) -> Path:
    """An index of the first 40 sample products."""
    out = tmp_path / "idx"
    build_index(make_catalog(ROWS[:40], "base"), fake_encoder, out, progress=False)
    return out


@pytest.mark.parametrize("index_type", ["Flat", "IVF4,Flat", "HNSW8,Flat"])
def test_add_replace_delete_round_trip(
    tmp_path: Path, make_catalog, fake_encoder, index_type
) -> None:
    out = tmp_path / "idx"
    build_index(
        make_catalog(ROWS[:40], "base"),
        fake_encoder,
        out,
        index_type=index_type,
        progress=False,
    )
    changed = [dict(row) for row in ROWS[30:60]]
    changed[0]["text"] = "Completely New Title For A Replaced Product"
    update = make_catalog(changed, "update")
    report = update_index(out, fake_encoder, update, progress=False)
    assert (report.added, report.replaced, report.deleted) == (20, 10, 0)
    assert report.encoded_images == 20 and report.encoded_texts == 21  # only the new ones
    gone = [ROWS[0]["id"], ROWS[45]["id"]]
    report = update_index(out, delete_ids=gone, progress=False)  # no model needed
    assert report.deleted == 2 and report.manifest.count == 58
    final = make_catalog([r for r in ROWS[:30] + changed if r["id"] not in gone], "final")
    reference = reference_for(final, fake_encoder)
    queries = unit_queries(4)
    with open_index(out) as index:
        assert len(index) == 58 and index.manifest.index_type == index_type
        assert index.get_products(gone) == [None, None]
        assert index.get_products([changed[0]["id"]])[0].text == changed[0]["text"]
        for kind, search in (("images", index.search_images), ("texts", index.search_texts)):
            assert _ids(search(queries, 58)) == _expected(reference, kind, queries, 58)
            filters = {"gender": ["Men", "Women"]}
            assert _ids(search(queries, 7, filters)) == _expected(
                reference, kind, queries, 7, filters
            )
    assert verify_index(out).ok
    assert len(list_versions(out)) == 2


def _numbers(index_dir: Path) -> dict[str, int]:
    with ProductStore.open(resolve_version_dir(index_dir) / STORE_NAME) as store:
        nums, ids = store.id_table()
    return dict(zip(ids, nums.tolist()))


def test_ids_keep_their_faiss_numbers_across_updates(
    base: Path, make_catalog, fake_encoder
) -> None:
    before = _numbers(base)
    update_index(base, fake_encoder, make_catalog(ROWS[10:20], "again"), progress=False)
    assert _numbers(base) == before


def test_unknown_ids_to_delete_are_refused(base: Path) -> None:
    before = list_versions(base)
    with pytest.raises(UnknownProductError, match="'nope-1', 'nope-2'"):
        update_index(base, delete_ids=[ROWS[0]["id"], "nope-1", "nope-2"], progress=False)
    assert list_versions(base) == before


def test_another_model_is_refused(base: Path, make_catalog) -> None:
    other = FakeEncoder(model_id="another-model")
    with pytest.raises(ModelMismatchError, match="fake-model-1.*another-model"):
        update_index(base, other, make_catalog(ROWS[50:52], "x"), progress=False)
    assert other.calls == 0


def test_nothing_to_do_and_no_model_are_errors(base: Path, make_catalog) -> None:
    with pytest.raises(IndexerError, match="nothing to update"):
        update_index(base, progress=False)
    with pytest.raises(IndexerError, match="needs the model"):
        update_index(base, None, make_catalog(ROWS[50:52], "y"), progress=False)
    with pytest.raises(IndexerError, match="both updated and deleted"):
        update_index(base, FakeEncoder(), make_catalog(ROWS[:2], "z"), [ROWS[0]["id"]])


def test_missing_or_damaged_index_is_refused(tmp_path: Path, base: Path) -> None:
    with pytest.raises(IndexNotFoundError):
        update_index(tmp_path / "nothing-here", delete_ids=["1"], progress=False)
    store = resolve_version_dir(base) / STORE_NAME
    data = bytearray(store.read_bytes())
    data[len(data) // 2] ^= 0xFF
    store.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="products.sqlite"):
        update_index(base, delete_ids=[ROWS[0]["id"]], progress=False)


def test_copied_images_follow_updates(tmp_path: Path, make_catalog, fake_encoder) -> None:
    out = tmp_path / "idx"
    build_index(make_catalog(ROWS[:10], "b"), fake_encoder, out, copy_images=True, progress=False)
    update_index(out, fake_encoder, make_catalog(ROWS[10:15], "u"), [ROWS[0]["id"]], progress=False)
    update_index(out, delete_ids=[ROWS[1]["id"]], progress=False)  # the first version is pruned
    assert verify_index(out).ok
    with open_index(out) as index:
        products = index.get_products([row["id"] for row in ROWS[2:15]])
        assert all(
            p.image.is_file() and p.image.is_relative_to(index.version_dir) for p in products
        )


def test_deleting_everything_leaves_an_empty_searchable_index(base: Path) -> None:
    update_index(base, delete_ids=[row["id"] for row in ROWS[:40]], progress=False)
    with open_index(base) as index:
        assert len(index) == 0
        assert index.search_texts(unit_queries(2), 5) == [[], []]
        assert index.search_images(unit_queries(1), 5, filters={"gender": "Men"}) == [[]]
    assert verify_index(base).ok
