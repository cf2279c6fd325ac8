"""indexer.store: SQLite product records."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from indexer.errors import IndexCorruptError
from indexer.store import ProductRecord, ProductStore


def _record(num: int, product_id: str, **attributes: str) -> ProductRecord:
    return ProductRecord(
        num, product_id, f"title {product_id}", f"/img/{product_id}.jpg", "ab" * 32, attributes
    )


@pytest.fixture
def store(tmp_path: Path) -> ProductStore:
    store = ProductStore.create(tmp_path / "products.sqlite")
    store.upsert([_record(0, "a", gender="Men"), _record(1, "b"), _record(2, "c", year="2012")])
    yield store
    store.close()


def test_lookups_by_id_keep_order_and_mark_unknown(store: ProductStore) -> None:
    got = store.get(["c", "zzz", "a", "c"])
    assert [r.id if r else None for r in got] == ["c", None, "a", "c"]
    assert got[0].attributes == {"year": "2012"} and got[2].num == 0
    assert store.nums_of(["b", "zzz"]) == {"b": 1}


def test_upsert_replaces_by_num_and_delete_removes(store: ProductStore) -> None:
    store.upsert([ProductRecord(1, "b", "new title", "/x.jpg", "cd" * 32, {"k": "v"})])
    assert store.get(["b"])[0].text == "new title"
    store.delete([0, 2])
    assert store.count() == 1
    nums, ids = store.id_table()
    assert nums.tolist() == [1] and ids == ["b"]
    assert store.next_num() == 2


def test_many_ids_beyond_sqlite_parameter_limit(tmp_path: Path) -> None:
    with ProductStore.create(tmp_path / "big.sqlite") as big:
        big.upsert(_record(i, f"p{i}") for i in range(2500))
        assert len(big.nums_of([f"p{i}" for i in range(2500)])) == 2500
        assert [r.num for r in big.get([f"p{i}" for i in range(0, 2500, 3)])] == list(
            range(0, 2500, 3)
        )


def test_readonly_store_cannot_be_written(store: ProductStore, tmp_path: Path) -> None:
    store.close()
    with ProductStore.open(tmp_path / "products.sqlite") as readonly:
        assert readonly.count() == 3
        assert [r.id for r in readonly.records()] == ["a", "b", "c"]
        with pytest.raises(sqlite3.OperationalError):
            readonly.delete([0])


def test_missing_and_damaged_stores_are_corrupt(tmp_path: Path) -> None:
    with pytest.raises(IndexCorruptError, match="missing"):
        ProductStore.open(tmp_path / "absent.sqlite")
    (tmp_path / "junk.sqlite").write_bytes(b"this is not a database file, not at all" * 100)
    with pytest.raises(IndexCorruptError, match="damaged"):
        ProductStore.open(tmp_path / "junk.sqlite")


def test_create_refuses_to_overwrite(store: ProductStore, tmp_path: Path) -> None:
    with pytest.raises(FileExistsError):
        ProductStore.create(tmp_path / "products.sqlite")
