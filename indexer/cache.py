"""On-disk embedding cache, so a build re-encodes only what it has not encoded before.

Keys are (model id, "image", sha256 of the image file's bytes) and (model id, "text",
sha256 of the text). SQLite in WAL mode, committed after every batch: a build killed in
the middle keeps every batch it finished.

Each vector is stored with a CRC32 of its bytes (column `crc`). An entry whose CRC does not match (or,
for entries written before CRCs, that is not a finite unit vector) counts as damaged: it
is left out, so the build encodes it again and overwrites it, and `index verify`
reports it. SQLite errors (a full disk, a read-only volume) become a CacheError naming
the file.
"""

from __future__ import annotations

import hashlib
import sqlite3
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, Self

import numpy as np

from indexer.errors import CacheError

Kind = Literal["image", "text"]
CACHE_NAME = "embeddings.sqlite"
_CHUNK = 500

SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    model_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model_id, kind, key)
) WITHOUT ROWID;
"""


@contextmanager
def _sqlite_errors(path: Path, doing: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise CacheError(
            f"cannot {doing} the embedding cache {path}: {exc}; entries written before "
            "are kept (free disk space or fix permissions and run the command again)"
        ) from exc


def unpack_vector(blob: bytes, crc: int | None, dim: int | None = None) -> np.ndarray | None:
    """The vector of a stored entry, or None when it is damaged (or of another size).

    `crc` is None for entries written before CRCs: those pass when they are finite unit
    vectors, as every vector the indexer stores is."""
    if len(blob) % 4 or (dim is not None and len(blob) != dim * 4):
        return None
    vector = np.frombuffer(blob, dtype=np.float32)
    if crc is not None:
        return vector if zlib.crc32(blob) == crc else None
    norm = float(np.linalg.norm(vector)) if np.isfinite(vector).all() else 0.0
    return vector if abs(norm - 1.0) < 1e-3 else None


def text_key(text: str) -> str:
    """The cache key of a text: its sha256 (texts can be long)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Embeddings of one model, (embed_dim,) float32 each, stored in cache_dir."""

    def __init__(self, cache_dir: Path, model_id: str, embed_dim: int) -> None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.path = cache_dir / CACHE_NAME
        self.model_id = model_id
        self.embed_dim = embed_dim
        with _sqlite_errors(self.path, "open"):
            self._connection = sqlite3.connect(self.path)
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.executescript(SCHEMA)
            columns = [row[1] for row in self._connection.execute("PRAGMA table_info(embeddings)")]
            if "crc" not in columns:  # a cache from before CRCs: its entries get NULL
                self._connection.execute("ALTER TABLE embeddings ADD COLUMN crc INTEGER")
        self.damaged = 0  # entries found damaged by get_many

    def get_many(self, kind: Kind, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """{key: (D,) float32} for the keys present; others are left out."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            with _sqlite_errors(self.path, "read"):
                rows = self._connection.execute(
                    "SELECT key, vector, crc FROM embeddings WHERE model_id = ? AND kind = ? "
                    f"AND key IN ({marks})",
                    (self.model_id, kind, *chunk),
                ).fetchall()
            for key, blob, crc in rows:
                vector = unpack_vector(blob, crc, self.embed_dim)
                if vector is None:  # damaged or stale: encoded again and overwritten
                    self.damaged += 1
                else:
                    found[key] = vector
        return found

    def put_many(self, kind: Kind, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors (M, D) float32 under keys (M,), in one transaction."""
        blobs = [np.ascontiguousarray(v, dtype=np.float32).tobytes() for v in vectors]
        rows = [(self.model_id, kind, k, b, zlib.crc32(b)) for k, b in zip(keys, blobs)]
        with _sqlite_errors(self.path, "write"), self._connection:
            self._connection.executemany(
                "INSERT OR REPLACE INTO embeddings (model_id, kind, key, vector, crc) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def count(self, kind: Kind | None = None) -> int:
        """Entries of this model (of one kind, or both)."""
        sql = "SELECT count(*) FROM embeddings WHERE model_id = ?"
        params: tuple = (self.model_id,)
        if kind is not None:
            sql += " AND kind = ?"
            params += (kind,)
        return int(self._connection.execute(sql, params).fetchone()[0])

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cache_problems(cache_dir: Path) -> list[str]:
    """What is wrong with the embedding cache in cache_dir (nothing when there is none):
    SQLite's own check, and entries whose vector fails its CRC."""
    path = cache_dir / CACHE_NAME
    if not path.is_file():
        return []
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            (status,) = connection.execute("PRAGMA quick_check").fetchone()
            if status != "ok":
                return [f"the embedding cache {path} is damaged: {status}"]
            columns = [row[1] for row in connection.execute("PRAGMA table_info(embeddings)")]
            crc = "crc" if "crc" in columns else "NULL"
            rows = connection.execute(f"SELECT vector, {crc} FROM embeddings")
            damaged = sum(1 for blob, value in rows if unpack_vector(blob, value) is None)
        finally:
            connection.close()
    except sqlite3.Error as exc:
        return [f"the embedding cache {path} cannot be read: {exc}"]
    if damaged:
        return [
            (
                f"the embedding cache {path} has {damaged} damaged entries; the next build "
                "or update encodes them again (or delete the cache to start afresh)"
            )
        ]
    return []
