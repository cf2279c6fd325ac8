"""indexer.cache: embeddings persist per model and kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexer.cache import EmbeddingCache, text_key


def test_put_get_persist_and_isolate_models(tmp_path: Path) -> None:
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    with EmbeddingCache(tmp_path, "m1", 4) as cache:
        cache.put_many("image", ["a", "b", "c"], vectors)
        assert cache.get_many("text", ["a"]) == {}
    with EmbeddingCache(tmp_path, "m1", 4) as cache:
        found = cache.get_many("image", ["c", "a", "zz", "a"])
        assert set(found) == {"a", "c"}
        np.testing.assert_array_equal(found["c"], vectors[2])
        assert cache.count() == 3 and cache.count("text") == 0
    with EmbeddingCache(tmp_path, "m2", 4) as other:
        assert other.get_many("image", ["a"]) == {}


def test_vectors_of_another_size_count_as_missing(tmp_path: Path) -> None:
    with EmbeddingCache(tmp_path, "m", 4) as cache:
        cache.put_many("text", ["t"], np.ones((1, 8), np.float32))
        assert cache.get_many("text", ["t"]) == {}


def test_text_keys_are_stable_hashes() -> None:
    assert text_key("Red Shirt") == text_key("Red Shirt") != text_key("red shirt")
    assert len(text_key("x" * 10_000)) == 64
