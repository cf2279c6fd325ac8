"""indexer.decode_pool: photos decoded in worker processes encode exactly as in process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from indexer_fakes import FakeEncoder

from indexer.cache import EmbeddingCache
from indexer.decode_pool import DecodePool, decode_photos, default_workers, read_chunk
from indexer.encode import encode_products
from indexer.errors import IndexerError
from models import read_catalog


def _encode(products, encoder, cache_dir: Path, workers: int):  # type: ignore[no-untyped-def]
    with EmbeddingCache(cache_dir, encoder.model_id, encoder.embed_dim) as cache:
        return encode_products(
            products, encoder, cache, batch_size=8, progress=False, workers=workers
        )


@pytest.mark.parametrize("which", ["fake", "tiny"])
def test_workers_encode_what_the_process_encodes(
    small_catalog: Path, tmp_path: Path, tiny_model, which: str
) -> None:  # type: ignore[no-untyped-def]
    """With a models encoder the workers hand over preprocessed pixels; with another,
    decoded images. Either way: the same vectors, kept rows and skips as in process."""
    products = read_catalog(small_catalog).products
    products[3].image.write_bytes(b"not a photo")  # skipped the same way in both
    encoder = FakeEncoder() if which == "fake" else tiny_model
    here = _encode(products, encoder, tmp_path / "a", workers=0)
    pooled = _encode(products, encoder, tmp_path / "b", workers=2)
    np.testing.assert_array_equal(here.image_vectors, pooled.image_vectors)
    np.testing.assert_array_equal(here.text_vectors, pooled.text_vectors)
    assert here.kept == pooled.kept and 3 not in pooled.kept
    assert [s.id for s in here.skipped] == [s.id for s in pooled.skipped] == [products[3].id]
    assert here.image_sha256 == pooled.image_sha256


def test_pixels_are_the_encoders_own(small_catalog: Path, tiny_model) -> None:  # type: ignore[no-untyped-def]
    products = read_catalog(small_catalog).products[:4]
    chunk = read_chunk(products)
    with DecodePool(1, tiny_model.transform) as pool:
        decoded = pool.submit(list(chunk.photos.values())).result()
    for row, sha in chunk.shas.items():
        np.testing.assert_array_equal(
            decoded.pictures[sha], tiny_model.preprocess(products[row].image)
        )
    assert decode_photos([], None, 10).pictures == {}


def test_worker_counts() -> None:
    assert default_workers(100) == 0  # a small catalogue decodes in process
    assert default_workers(50_000) >= 1
    with pytest.raises(IndexerError, match="0 or more"):
        DecodePool(-1, None)
