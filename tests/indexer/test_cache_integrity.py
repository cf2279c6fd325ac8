"""Embedding-cache entries carry a CRC: a damaged one is encoded again, never
published, and `index verify` reports it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
from indexer_fakes import FakeEncoder

from indexer import build_index, open_index, verify_index
from indexer.cache import CACHE_NAME, EmbeddingCache
from indexer.cli import main as index_main
from indexer.versions import CACHE_DIR


def _flip_a_byte(cache_file: Path, kind: str = "image") -> None:
    """Flip one byte inside one stored vector, as a bad disk would."""
    with sqlite3.connect(cache_file) as connection:
        key, blob = connection.execute(
            "SELECT key, vector FROM embeddings WHERE kind = ? ORDER BY key LIMIT 1", (kind,)
        ).fetchone()
        damaged = bytearray(blob)
        damaged[5] ^= 0x40
        connection.execute(
            "UPDATE embeddings SET vector = ? WHERE key = ? AND kind = ?",
            (bytes(damaged), key, kind),
        )


def test_a_flipped_byte_is_left_out(tmp_path: Path) -> None:
    vector = np.full(4, 0.5, np.float32)
    with EmbeddingCache(tmp_path, "m", 4) as cache:
        cache.put_many("image", ["a", "b"], np.stack([vector, vector]))
    _flip_a_byte(tmp_path / CACHE_NAME)
    with EmbeddingCache(tmp_path, "m", 4) as cache:
        assert set(cache.get_many("image", ["a", "b"])) == {"b"}
        assert cache.damaged == 1


def test_entries_from_before_crcs_are_checked_for_being_unit_vectors(tmp_path: Path) -> None:
    with EmbeddingCache(tmp_path, "m", 4) as cache:
        pass
    with sqlite3.connect(tmp_path / CACHE_NAME) as connection:
        for key, values in (("unit", [0.5] * 4), ("garbage", [3.0, 0, 0, 0])):
            blob = np.asarray(values, np.float32).tobytes()
            connection.execute(
                "INSERT INTO embeddings VALUES ('m', 'text', ?, ?, NULL)", (key, blob)
            )
    with EmbeddingCache(tmp_path, "m", 4) as cache:
        assert set(cache.get_many("text", ["unit", "garbage"])) == {"unit"}


def test_a_damaged_entry_is_encoded_again_not_published(
    tmp_path: Path, small_catalog: Path, fake_encoder: FakeEncoder, capsys
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "index"
    build_index(small_catalog, fake_encoder, out, progress=False)
    with open_index(out) as index:
        reference = index.search_images(np.eye(1, fake_encoder.embed_dim, dtype=np.float32), 60)
    _flip_a_byte(out / CACHE_DIR / CACHE_NAME)

    report = verify_index(out)
    assert not report.ok
    assert any("1 damaged entries" in problem for problem in report.problems)
    assert index_main(["verify", str(out)]) == 1
    assert "damaged entries" in capsys.readouterr().err

    rebuilt = build_index(small_catalog, fake_encoder, out, progress=False)
    assert rebuilt.encoded_images == 1 and rebuilt.encoded_texts == 0
    with open_index(out) as index:
        again = index.search_images(np.eye(1, fake_encoder.embed_dim, dtype=np.float32), 60)
    assert again == reference  # the damaged vector was not published
    assert verify_index(out).ok
