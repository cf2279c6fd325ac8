"""indexer.encode: the catalogue encoder, through the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from indexer_fakes import FakeEncoder

from indexer.cache import EmbeddingCache
from indexer.encode import Encoder, encode_products
from indexer.errors import EncoderError
from models import read_catalog


def test_the_fake_is_shaped_like_an_encoder(fake_encoder: FakeEncoder) -> None:
    assert isinstance(fake_encoder, Encoder)


def test_second_pass_encodes_nothing(
    tmp_path: Path, small_catalog: Path, fake_encoder: FakeEncoder
) -> None:
    products = read_catalog(small_catalog).products
    with EmbeddingCache(tmp_path / "cache", fake_encoder.model_id, fake_encoder.embed_dim) as cache:
        first = encode_products(products, fake_encoder, cache, batch_size=16, progress=False)
        calls = fake_encoder.calls
        second = encode_products(products, fake_encoder, cache, batch_size=7, progress=False)
    assert first.encoded_images == len({*first.image_sha256}) and first.encoded_texts > 0
    assert fake_encoder.calls == calls and second.encoded_images == second.encoded_texts == 0
    np.testing.assert_array_equal(first.image_vectors, second.image_vectors)
    np.testing.assert_array_equal(first.text_vectors, second.text_vectors)
    norms = np.linalg.norm(first.image_vectors, axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


def test_duplicate_images_and_texts_are_encoded_once(
    tmp_path: Path, small_catalog: Path, fake_encoder: FakeEncoder
) -> None:
    product = read_catalog(small_catalog).products[0]
    with EmbeddingCache(tmp_path / "cache", fake_encoder.model_id, fake_encoder.embed_dim) as cache:
        result = encode_products([product] * 5, fake_encoder, cache, progress=False)
    assert fake_encoder.images_encoded == 1 and fake_encoder.texts_encoded == 1
    assert result.image_vectors.shape == (5, fake_encoder.embed_dim)


def test_unreadable_images_are_skipped_naming_the_product(
    tmp_path: Path, make_catalog, fake_encoder: FakeEncoder
) -> None:
    catalog = make_catalog(5, "broken")
    products = read_catalog(catalog).products
    products[2].image.write_bytes(b"\xff\xd8 not really a jpeg")
    products[3].image.unlink()
    with EmbeddingCache(tmp_path / "cache", fake_encoder.model_id, fake_encoder.embed_dim) as cache:
        result = encode_products(products, fake_encoder, cache, progress=False, batch_size=2)
    assert result.kept == [0, 1, 4]
    assert result.image_vectors.shape == result.text_vectors.shape == (3, fake_encoder.embed_dim)
    assert len(result.image_sha256) == 3
    (bad, missing) = result.skipped
    assert bad.id == products[2].id and products[2].image.name in bad.reason
    assert missing.id == products[3].id and "cannot read" in missing.reason


class _WrongShape(FakeEncoder):
    def encode_texts(self, texts, batch_size=256):
        return np.zeros((len(texts), self.embed_dim + 1), np.float32)


def test_wrong_embedding_shape_is_an_error(tmp_path: Path, small_catalog: Path) -> None:
    encoder = _WrongShape()
    products = read_catalog(small_catalog).products[:3]
    cache = EmbeddingCache(tmp_path / "cache", encoder.model_id, encoder.embed_dim)
    with cache, pytest.raises(EncoderError, match="text embeddings of shape"):
        encode_products(products, encoder, cache, progress=False)


def test_progress_in_a_log_is_plain_lines(
    tmp_path: Path,
    small_catalog: Path,
    fake_encoder: FakeEncoder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """stderr is not a terminal here (as in docker logs or CI): whole lines, no
    carriage-return frames, the final count last."""
    products = read_catalog(small_catalog).products
    with EmbeddingCache(tmp_path / "cache", fake_encoder.model_id, fake_encoder.embed_dim) as cache:
        encode_products(products, fake_encoder, cache, batch_size=4, progress=True, workers=0)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith("encoding:")]
    assert 1 <= len(lines) <= 3  # not one frame per batch
    assert f"{len(products)}/{len(products)}" in lines[-1]
