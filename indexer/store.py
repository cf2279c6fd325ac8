"""The product records of an index, in SQLite: one row per product.

`num` is the integer id the FAISS indices use for the product; `id` is the catalogue's
string id. Both are stable across updates. A published store is never written again, so
readers open it read-only and immutable (no locks, no journal files beside it).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np

from indexer.errors import IndexCorruptError

SCHEMA = """
CREATE TABLE products (
    num INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    image TEXT NOT NULL,
    image_sha256 TEXT NOT NULL,
    attributes TEXT NOT NULL
);
"""
_COLUMNS = "num, id, text, image, image_sha256, attributes"
_CHUNK = 500  # stays under SQLite's limit on bound parameters


@dataclass(frozen=True)
class ProductRecord:
    """A stored product. `image` is absolute, or relative to the version directory."""

    num: int
    id: str
    text: str
    image: str
    image_sha256: str
    attributes: dict[str, str] = field(default_factory=dict)


def _record(row: tuple) -> ProductRecord:
    num, product_id, text, image, sha, attributes = row
    return ProductRecord(int(num), product_id, text, image, sha, json.loads(attributes))


def _chunks(items: Sequence, size: int = _CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ProductStore:
    """Product records keyed by num and by id. Thread-safe (one connection, one lock)."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._connection = connection
        self._lock = threading.Lock()
        self.path = path

    @classmethod
    def create(cls, path: Path) -> ProductStore:
        """A new, empty store at `path` (which must not exist)."""
        if path.exists():
            raise FileExistsError(f"product store already exists: {path}")
        connection = sqlite3.connect(path)
        connection.executescript(SCHEMA)
        return cls(connection, path)

    @classmethod
    def open(cls, path: Path, *, readonly: bool = True) -> ProductStore:
        """Open an existing store; raises IndexCorruptError when it is missing or damaged."""
        if not path.is_file():
            raise IndexCorruptError(f"product store missing: {path}; rebuild with `index build`")
        if readonly:
            uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
            connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            connection = sqlite3.connect(path)
        store = cls(connection, path)
        try:
            store.count()
        except sqlite3.DatabaseError as exc:
            connection.close()
            raise IndexCorruptError(f"product store {path} is damaged: {exc}") from exc
        return store

    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        try:
            with self._lock:
                return self._connection.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"product store {self.path} is damaged: {exc}") from exc

    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM products")[0][0])

    def next_num(self) -> int:
        """The num to give the next new product (one past the largest ever stored)."""
        return int(self._query("SELECT coalesce(max(num), -1) + 1 FROM products")[0][0])

    def nums_of(self, ids: Sequence[str]) -> dict[str, int]:
        """{id: num} for the ids the store holds (unknown ids are left out)."""
        found: dict[str, int] = {}
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            rows = self._query(f"SELECT id, num FROM products WHERE id IN ({marks})", chunk)
            found.update((product_id, int(num)) for product_id, num in rows)
        return found

    def get(self, ids: Sequence[str]) -> list[ProductRecord | None]:
        """Records in the order of `ids`; None for an id the store does not hold."""
        by_id: dict[str, ProductRecord] = {}
        for chunk in _chunks(list(dict.fromkeys(ids))):
            marks = ",".join("?" * len(chunk))
            rows = self._query(f"SELECT {_COLUMNS} FROM products WHERE id IN ({marks})", chunk)
            by_id.update((row[1], _record(row)) for row in rows)
        return [by_id.get(product_id) for product_id in ids]

    def records(self) -> Iterator[ProductRecord]:
        """Every record, by num."""
        for row in self._query(f"SELECT {_COLUMNS} FROM products ORDER BY num"):
            yield _record(row)

    def id_table(self) -> tuple[np.ndarray, list[str]]:
        """(nums (N,) int64 ascending, ids in the same order)."""
        rows = self._query("SELECT num, id FROM products ORDER BY num")
        nums = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        return nums, [row[1] for row in rows]

    def upsert(self, records: Iterable[ProductRecord]) -> None:
        """Insert records, replacing any with the same num."""
        rows = [
            (r.num, r.id, r.text, r.image, r.image_sha256, json.dumps(r.attributes, sort_keys=True))
            for r in records
        ]
        with self._lock:
            self._connection.executemany(
                f"INSERT OR REPLACE INTO products ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows
            )
            self._connection.commit()

    def delete(self, nums: Iterable[int]) -> None:
        with self._lock:
            for chunk in _chunks([int(n) for n in nums]):
                marks = ",".join("?" * len(chunk))
                self._connection.execute(f"DELETE FROM products WHERE num IN ({marks})", chunk)
            self._connection.commit()

    def compact(self) -> None:
        """Give the pages of deleted rows back (before the store is published)."""
        with self._lock:
            self._connection.execute("VACUUM")

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
