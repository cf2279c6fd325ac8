"""On-disk embedding cache, so a build re-encodes only what it has not encoded before.

Keys are (model id, "image", sha256 of the image file's bytes) and (model id, "text",
sha256 of the text). SQLite in WAL mode, committed after every batch: a build killed in
the middle keeps every batch it finished.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Self

import numpy as np

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
        self._connection = sqlite3.connect(self.path)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.executescript(SCHEMA)

    def get_many(self, kind: Kind, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """{key: (D,) float32} for the keys present; others are left out."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        size = self.embed_dim * 4
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._connection.execute(
                "SELECT key, vector FROM embeddings WHERE model_id = ? AND kind = ? "
                f"AND key IN ({marks})",
                (self.model_id, kind, *chunk),
            ).fetchall()
            for key, blob in rows:
                if len(blob) == size:  # a blob of another size is stale: encode again
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, kind: Kind, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors (M, D) float32 under keys (M,), in one transaction."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = [(self.model_id, kind, key, vector.tobytes()) for key, vector in zip(keys, vectors)]
        with self._connection:
            self._connection.executemany(
                "INSERT OR REPLACE INTO embeddings (model_id, kind, key, vector) "
                "VALUES (?, ?, ?, ?)",
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
