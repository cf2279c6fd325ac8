"""indexer.search: open_index and searching, against a brute-force numpy reference."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from indexer_fakes import FakeEncoder, reference_for, unit_queries

from indexer import Hit, open_index
from indexer.errors import (
    IndexCorruptError,
    IndexNotFoundError,
    InvalidQueryError,
    ModelMismatchError,
    UnknownAttributeError,
)
from indexer.manifest import IMAGES_INDEX, STORE_NAME, TEXTS_INDEX
from indexer.publish import resolve_version_dir
from models import read_catalog


def _ids(rows) -> list[list[str]]:
    return [[hit.id for hit in row] for row in rows]


def _flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if offset is None else offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def index(built_index: Path):
    with open_index(built_index) as opened:
        yield opened


def test_hits_are_ids_and_scores_best_first(
    index, small_catalog: Path, fake_encoder: FakeEncoder
) -> None:
    reference = reference_for(small_catalog, fake_encoder)
    queries = unit_queries(6)
    hits = index.search_images(queries, 10)
    expected = reference.search("images", queries, 10)
    assert all(isinstance(hit, Hit) for row in hits for hit in row)
    assert _ids(hits) == [[i for i, _ in row] for row in expected]
    np.testing.assert_allclose(
        [[h.score for h in row] for row in hits],
        [[s for _, s in row] for row in expected],
        rtol=1e-5,
    )


def test_filters_return_k_whenever_k_match(
    index, small_catalog: Path, fake_encoder: FakeEncoder
) -> None:
    reference = reference_for(small_catalog, fake_encoder)
    queries = unit_queries(5, seed=3)
    counts = Counter(a["articleType"] for a in reference.attributes)
    rare = min(counts, key=counts.get)
    common = max(counts, key=counts.get)
    cases = [
        {"articleType": rare},  # fewer matches than k: all of them
        {"articleType": common},
        {
            "articleType": [rare, common],
            "gender": sorted({a["gender"] for a in reference.attributes}),
        },
        {"gender": "Men", "articleType": list(counts)},
        {"articleType": "No Such Type"},
    ]
    for filters in cases:
        for kind, search in (("images", index.search_images), ("texts", index.search_texts)):
            expected = reference.search(kind, queries, 10, filters)
            got = search(queries, 10, filters=filters)
            assert _ids(got) == [[i for i, _ in row] for row in expected], filters
            matching = len(reference.search(kind, queries[:1], 10_000, filters)[0])
            assert all(len(row) == min(10, matching) for row in got)


def test_unknown_attribute_is_a_clear_error(index) -> None:
    with pytest.raises(UnknownAttributeError, match="'colour'.*baseColour"):
        index.search_texts(unit_queries(1), 5, filters={"colour": "Red"})


@pytest.mark.parametrize(
    ("vectors", "k"),
    [
        (np.zeros((2, 15), np.float32), 5),
        (np.zeros(16, np.float32), 5),
        (np.zeros((1, 16)), 0),
        (np.zeros((1, 16)), True),
    ],
)
def test_bad_queries_are_clear_errors(index, vectors, k) -> None:
    with pytest.raises(InvalidQueryError):
        index.search_images(vectors, k)


def test_float64_queries_and_k_beyond_the_index(index) -> None:
    hits = index.search_texts(unit_queries(2).astype(np.float64), 500)
    assert [len(row) for row in hits] == [60, 60]


def test_products_and_attribute_values(index, small_catalog: Path) -> None:
    catalog = read_catalog(small_catalog).products
    assert index.get_products([catalog[5].id, "missing", catalog[0].id]) == [
        catalog[5],
        None,
        catalog[0],
    ]
    values = index.attribute_values()
    assert values["gender"] == sorted({p.attributes["gender"] for p in catalog})
    assert len(index) == 60


def test_concurrent_searches_agree(index) -> None:
    queries = unit_queries(3)
    expected = index.search_texts(queries, 5, filters={"gender": "Men"})
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda _: index.search_texts(queries, 5, filters={"gender": "Men"}), range(16))
        )
    assert all(result == expected for result in results)


def test_expected_model_id(built_index: Path) -> None:
    open_index(built_index, expected_model_id="fake-model-1").close()
    with pytest.raises(ModelMismatchError, match="fake-model-1.*other-model"):
        open_index(built_index, expected_model_id="other-model")


@pytest.mark.parametrize("name", [IMAGES_INDEX, TEXTS_INDEX, STORE_NAME])
def test_a_flipped_byte_is_caught_on_open(built_index: Path, name: str) -> None:
    _flip_byte(resolve_version_dir(built_index) / name)
    with pytest.raises(IndexCorruptError, match=name):
        open_index(built_index)


def test_a_missing_file_is_caught_on_open(built_index: Path) -> None:
    (resolve_version_dir(built_index) / TEXTS_INDEX).unlink()
    with pytest.raises(IndexCorruptError, match="missing file.*texts.faiss"):
        open_index(built_index)
    with pytest.raises(IndexCorruptError, match="texts.faiss"):
        open_index(built_index, verify=False)


def test_no_index_here(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="index build"):
        open_index(tmp_path)


def test_a_version_directory_opens_directly(built_index: Path) -> None:
    with open_index(resolve_version_dir(built_index), device="cpu") as index:
        assert len(index) == 60 and index.placement == "cpu"
