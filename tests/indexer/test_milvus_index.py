"""The Milvus backend on Milvus Lite: build, search, similar, update, delete, verify and
info round trips, checked against the FAISS backend on the same catalogue (exact
indexes: the same top-10 ids, scores within 1e-4) and against brute force. Filters run
on the attribute columns (indexed VARCHAR fields, whatever the attribute's name), or on
the JSON field of an index built before them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from indexer_fakes import FakeEncoder, reference_for, sample_rows, unit_queries, write_catalog
from milvus_support import release_local

from indexer import build_index, open_index
from indexer.errors import (
    IndexerError,
    IndexNotFoundError,
    ModelMismatchError,
    UnknownAttributeError,
    UnknownProductError,
)
from indexer.milvus import (
    MilvusLocation,
    build_milvus_index,
    describe_milvus_index,
    open_milvus_index,
    update_milvus_index,
    verify_milvus_index,
)
from indexer.milvus import build as milvus_build
from indexer.milvus.connection import connect
from indexer.milvus.schema import COLUMNS_KEY, attribute_columns, manifest_property
from indexer.milvus.versions import list_versions, published

# Attribute values that must stay values: quotes, backslashes, non-ASCII, empty.
TAGS = ["plain", '" or id != "', "Bébé ☂ 👗", 'back\\slash "q"', "it's", ""]
TARGETS = ("image", "text", "product")
# Attribute names that are not identifiers: they get escaped columns (attrx_...).
SPACED = "base colour / 色"
HOSTILE_NAME = 'x" or id != "y'


def tagged_rows(n: int = 60) -> list[dict[str, str]]:
    rows = [dict(row) for row in sample_rows()[:n]]
    for position, row in enumerate(rows):
        row["tag"] = TAGS[position % len(TAGS)]
        row[SPACED] = ["Black", "Grey", '"Blue"'][position % 3]
        row[HOSTILE_NAME] = ["1", '" or id != "'][position % 2]
    return rows


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_catalog(tmp_path_factory.mktemp("milvus-catalog"), tagged_rows())


@pytest.fixture(scope="module")
def encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(scope="module")
def faiss_dir(
    tmp_path_factory: pytest.TempPathFactory, catalog: Path, encoder: FakeEncoder
) -> Path:
    out = tmp_path_factory.mktemp("faiss") / "index"
    build_index(catalog, encoder, out, progress=False)
    return out


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, catalog: Path, encoder: FakeEncoder
) -> Iterator[MilvusLocation]:
    """A Milvus Lite index of the catalogue, shared by the read-only tests."""
    db = tmp_path_factory.mktemp("milvus") / "index.db"
    location = MilvusLocation(str(db))
    build_milvus_index(catalog, encoder, location, progress=False)
    yield location
    release_local(db)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[MilvusLocation]:
    """An empty Milvus Lite file for a test that writes."""
    yield MilvusLocation(str(tmp_path / "milvus.db"))
    release_local(tmp_path / "milvus.db")


def ids_scores(rows: list) -> list[list[tuple[str, float]]]:
    return [[(hit.id, hit.score) for hit in row] for row in rows]


def assert_same_hits(got: list, expected: list, tolerance: float = 1e-4) -> None:
    assert [[h[0] for h in row] for row in got] == [[h[0] for h in row] for row in expected]
    for row, other in zip(got, expected, strict=True):
        assert np.allclose([h[1] for h in row], [h[1] for h in other], atol=tolerance)


def test_search_matches_faiss_and_brute_force(
    built: MilvusLocation, faiss_dir: Path, catalog: Path, encoder: FakeEncoder
) -> None:
    queries = unit_queries(6)
    reference = reference_for(catalog, encoder)
    with open_milvus_index(built) as milvus, open_index(faiss_dir) as faiss:
        assert len(milvus) == len(faiss) == 60 and milvus.targets == faiss.targets
        for target, kind in zip(TARGETS, ("images", "texts", "products"), strict=True):
            got = ids_scores(milvus.search(queries, 10, target=target))
            assert_same_hits(got, ids_scores(faiss.search(queries, 10, target=target)))
            assert_same_hits(got, reference.search(kind, queries, 10))
        batched = milvus.search_products(queries, 3)
        assert [len(row) for row in batched] == [3] * 6


NO_MATCH = [
    {"gender": '" or id != "'},
    {"gender": 'Men" or gender != "x'},
    {"gender": "Men') or (1 == 1"},
    {"tag": "nothing has this"},
    {"gender": []},
    {SPACED: 'Black" or id != "'},
    {HOSTILE_NAME: "1", SPACED: "no such colour"},
]


@pytest.mark.parametrize(
    "filters",
    [{"tag": tag} for tag in TAGS]
    + [{"tag": ['" or id != "', "plain"], "gender": "Men"}]
    + [{SPACED: ['"Blue"', "Grey"]}, {HOSTILE_NAME: '" or id != "', "tag": ["plain", ""]}]
    + NO_MATCH,
)
def test_filters_match_brute_force_and_values_never_change_the_expression(
    built: MilvusLocation, catalog: Path, encoder: FakeEncoder, filters: dict
) -> None:
    """A value is a value: the products that have it (the tags, quotes and all), else none."""
    queries = unit_queries(3, seed=1)
    expected = reference_for(catalog, encoder).search("images", queries, 25, filters)
    with open_milvus_index(built) as milvus:
        got = ids_scores(milvus.search(queries, 25, filters, target="image"))
    assert_same_hits(got, expected)
    assert (got == [[], [], []]) == (filters in NO_MATCH)


def test_attributes_are_indexed_columns_recorded_in_the_manifest(built: MilvusLocation) -> None:
    """Each attribute is a nullable VARCHAR column with an INVERTED index; the
    name -> column map is stored with the collection and read back by a replica."""
    names = {"gender", "masterCategory", "subCategory", "articleType", "baseColour"}
    names |= {"season", "year", "usage", "tag", SPACED, HOSTILE_NAME}
    expected = attribute_columns(names)
    client = connect(built)
    try:
        collection, manifest = published(client, built)
        assert manifest.extra[COLUMNS_KEY] == expected
        fields = {f["name"]: f for f in client.describe_collection(collection)["fields"]}
        indexes = {
            client.describe_index(collection, name).get("field_name", name): (
                client.describe_index(collection, name).get("index_type")
            )
            for name in client.list_indexes(collection)
        }
    finally:
        client.close()
    for column in expected.values():
        assert fields[column].get("nullable") is True, fields[column]
        assert indexes.get(column) == "INVERTED", indexes
    with open_milvus_index(built) as milvus:
        assert milvus.columns == expected
        assert milvus.expression({"tag": ["b", "a"]}) == '(attr_tag in ["a", "b"])'
        assert milvus.expression({HOSTILE_NAME: "1"}) == f'({expected[HOSTILE_NAME]} == "1")'


def test_unknown_attributes_are_refused_as_by_faiss(built: MilvusLocation, faiss_dir: Path) -> None:
    with open_milvus_index(built) as milvus, open_index(faiss_dir) as faiss:
        with pytest.raises(UnknownAttributeError) as from_faiss:
            faiss.search(unit_queries(1), 5, {"colour": "Red"}, target="image")
        with pytest.raises(UnknownAttributeError) as from_milvus:
            milvus.search(unit_queries(1), 5, {"colour": "Red"}, target="image")
        assert str(from_milvus.value) == str(from_faiss.value)
        assert milvus.attribute_values() == faiss.attribute_values()


def test_similar_and_products_match_faiss(built: MilvusLocation, faiss_dir: Path) -> None:
    with open_milvus_index(built) as milvus, open_index(faiss_dir) as faiss:
        some = [row["id"] for row in tagged_rows()[::9]]
        for product_id in some:
            for target in TARGETS:
                for filters in (None, {"gender": ["Men", "Women"]}):
                    got = milvus.similar(product_id, 8, filters, target=target)
                    expected = faiss.similar(product_id, 8, filters, target=target)
                    assert_same_hits([ids_scores([got])[0]], [ids_scores([expected])[0]])
        assert milvus.get_products([*some, "no such id"]) == faiss.get_products(
            [*some, "no such id"]
        )
        with pytest.raises(UnknownProductError):
            milvus.similar("no such id", 5)


def test_an_approximate_index_still_returns_k_when_k_match(
    fresh: MilvusLocation, catalog: Path, encoder: FakeEncoder
) -> None:
    coarse = {"index_type": "IVF_FLAT", "params": {"nlist": 16}, "search_params": {"nprobe": 1}}
    build_milvus_index(catalog, encoder, fresh, index_params_override=coarse, progress=False)
    queries = unit_queries(4, seed=2)
    filters = {"gender": "Men"}
    expected = reference_for(catalog, encoder).search("texts", queries, 10, filters)
    with open_milvus_index(fresh) as milvus:
        assert milvus.manifest.index_type == "IVF_FLAT"
        got = ids_scores(milvus.search(queries, 10, filters, target="text"))
    assert [len(row) for row in got] == [len(row) for row in expected] == [10] * 4
    assert {h[0] for row in got for h in row} <= {h[0] for row in expected for h in row} | {
        h[0] for row in got for h in row
    }


def test_update_upserts_and_deletes_in_place(
    fresh: MilvusLocation, tmp_path: Path, encoder: FakeEncoder
) -> None:
    rows = tagged_rows(70)
    first = write_catalog(tmp_path / "first", rows[:50])
    build_milvus_index(first, encoder, fresh, progress=False)
    changed = [dict(row, text=row["text"] + " v2") for row in rows[:5]]
    changes = write_catalog(tmp_path / "changes", changed + rows[50:70])
    report = update_milvus_index(fresh, encoder, changes, [rows[10]["id"]], progress=False)
    assert (report.added, report.replaced, report.deleted) == (20, 5, 1)
    assert report.manifest.count == 69 and report.collection.endswith("v000001")
    expected = reference_for(
        write_catalog(tmp_path / "expected", changed + rows[5:10] + rows[11:70]), encoder
    )
    queries = unit_queries(5, seed=3)
    with open_milvus_index(fresh) as milvus:
        assert len(milvus) == 69
        for kind, target in (("images", "image"), ("texts", "text"), ("products", "product")):
            assert_same_hits(
                ids_scores(milvus.search(queries, 10, target=target)),
                expected.search(kind, queries, 10),
            )
        product = milvus.get_products([rows[0]["id"], rows[10]["id"]])
        assert product[0] is not None and product[0].text.endswith(" v2") and product[1] is None
    with pytest.raises(UnknownProductError, match="'gone'"):
        update_milvus_index(fresh, None, None, ["gone", rows[11]["id"]])
    with pytest.raises(ModelMismatchError, match="fake-model-1"):
        update_milvus_index(fresh, FakeEncoder(model_id="other-model"), changes, progress=False)
    with open_milvus_index(fresh) as milvus:
        assert len(milvus) == 69 and milvus.get_products([rows[11]["id"]])[0] is not None


def test_builds_move_the_alias_and_keep_the_last_two(
    fresh: MilvusLocation, catalog: Path, tmp_path: Path, encoder: FakeEncoder
) -> None:
    smaller = write_catalog(tmp_path / "smaller", tagged_rows(30))
    build_milvus_index(catalog, encoder, fresh, progress=False)
    serving = open_milvus_index(fresh)
    report = build_milvus_index(smaller, encoder, fresh, progress=False)
    assert report.collection.endswith("v000002") and report.dropped == ()
    assert len(serving) == 60 and len(serving.search_images(unit_queries(1), 100)[0]) == 60
    serving.close()
    with open_milvus_index(fresh) as newer:
        assert len(newer) == 30 and newer.collection == report.collection
    third = build_milvus_index(catalog, encoder, fresh, progress=False)
    assert third.dropped == ("fashion_products__v000001",)
    client = connect(fresh)
    try:
        assert list_versions(client, fresh) == [report.collection, third.collection]
    finally:
        client.close()


def test_model_mismatch_and_missing_index_are_refused(
    built: MilvusLocation, fresh: MilvusLocation
) -> None:
    with pytest.raises(ModelMismatchError, match="other-model"):
        open_milvus_index(built, expected_model_id="other-model")
    with pytest.raises(IndexNotFoundError, match="index build --backend milvus"):
        open_milvus_index(fresh)


def test_verify_and_info(fresh: MilvusLocation, catalog: Path, encoder: FakeEncoder) -> None:
    assert not verify_milvus_index(fresh).ok  # nothing built yet
    build_milvus_index(catalog, encoder, fresh, progress=False)
    report = verify_milvus_index(fresh)
    assert report.ok, report.problems
    info = describe_milvus_index(fresh)
    assert "products    60" in info and "FLAT (exact search)" in info and "(current)" in info
    assert "; filtered on indexed columns" in info
    client = connect(fresh)
    try:  # a row removed behind the manifest's back, and the tag column's index dropped
        client.delete(report.collection, ids=[tagged_rows()[0]["id"]])
        client.flush(report.collection)
        client.release_collection(report.collection)
        client.drop_index(report.collection, index_name="attr_tag")
    finally:
        client.close()
    problems = verify_milvus_index(fresh).problems
    assert any("holds 59 products, its manifest says 60" in p for p in problems), problems
    assert any("attr_tag has no scalar index (filters on 'tag'" in p for p in problems), problems


# Tests that write their own index come last: Milvus Lite's gRPC server drops a client
# channel left idle for about 30 s (too_many_pings), so the module's shared index is
# used by consecutive tests.


def test_products_without_an_attribute_match_no_filter_on_it(
    fresh: MilvusLocation, tmp_path: Path, encoder: FakeEncoder
) -> None:
    """A product that lacks an attribute holds null in its column: no value matches it,
    not even "", and it reads back without the attribute."""
    rows = tagged_rows(24)
    write_catalog(tmp_path / "shop", rows)
    lines = []
    for position, row in enumerate(rows):
        if position % 3 == 0:
            del row["tag"]
        lines.append(json.dumps(row, ensure_ascii=False))
    catalog = tmp_path / "shop" / "catalog.jsonl"
    catalog.write_text("\n".join(lines) + "\n", encoding="utf-8")
    build_milvus_index(catalog, encoder, fresh, progress=False)
    reference = reference_for(catalog, encoder)
    queries = unit_queries(2, seed=4)
    with open_milvus_index(fresh) as milvus:
        for filters in ({"tag": ""}, {"tag": ["", "plain"]}, {"tag": "plain", "gender": "Men"}):
            assert_same_hits(
                ids_scores(milvus.search(queries, 30, filters, target="image")),
                reference.search("images", queries, 30, filters),
            )
        products = milvus.get_products([row["id"] for row in rows])
    assert [p.attributes if p else None for p in products] == reference.attributes
    assert "tag" not in reference.attributes[0] and "tag" in reference.attributes[1]


def test_update_takes_new_values_but_refuses_a_new_attribute_name(
    fresh: MilvusLocation, tmp_path: Path, encoder: FakeEncoder
) -> None:
    """Columns are fixed at build: a new value of a known attribute is filterable after
    the update; a new attribute name is refused, before anything is written, saying to
    rebuild."""
    rows = tagged_rows(40)
    build_milvus_index(write_catalog(tmp_path / "first", rows[:30]), encoder, fresh, progress=False)
    renamed = [dict(row, tag='brand "new"') for row in rows[:3]] + rows[30:40]
    update_milvus_index(fresh, encoder, write_catalog(tmp_path / "new", renamed), progress=False)
    expected = reference_for(write_catalog(tmp_path / "all", renamed + rows[3:30]), encoder)
    queries = unit_queries(3, seed=5)
    with open_milvus_index(fresh) as milvus:
        assert len(milvus) == 40 and 'brand "new"' in milvus.attribute_values()["tag"]
        for filters in ({"tag": 'brand "new"'}, {"tag": ["plain", 'brand "new"']}):
            got = ids_scores(milvus.search(queries, 10, filters, target="text"))
            assert_same_hits(got, expected.search("texts", queries, 10, filters))
        assert {h[0] for h in got[0]} >= {row["id"] for row in rows[:3]}
        before = milvus.manifest
    extended = [dict(row, material="cotton", tag="changed") for row in rows[:2]]
    with pytest.raises(
        IndexerError,
        match=r"'material' that the Milvus index .*'tag'.*`index build --backend milvus`",
    ):
        update_milvus_index(
            fresh, encoder, write_catalog(tmp_path / "extended", extended), progress=False
        )
    with open_milvus_index(fresh) as milvus:
        assert milvus.manifest == before  # nothing written
        assert milvus.get_products([rows[0]["id"]])[0].attributes["tag"] == 'brand "new"'
        with pytest.raises(UnknownAttributeError, match="'material'"):
            milvus.search(queries, 5, {"material": "cotton"}, target="image")


def test_an_index_built_before_attribute_columns_still_filters_on_json(
    fresh: MilvusLocation, catalog: Path, tmp_path: Path, encoder: FakeEncoder, monkeypatch
) -> None:
    """A collection without columns and whose manifest has no column map (as builds
    before columns wrote them): filters run on the JSON field, updates write it."""
    monkeypatch.setattr(milvus_build, "attribute_columns", lambda names: {})
    report = build_milvus_index(catalog, encoder, fresh, progress=False)
    monkeypatch.undo()
    extra = {k: v for k, v in report.manifest.extra.items() if k != COLUMNS_KEY}
    client = connect(fresh)
    try:
        fields = [f["name"] for f in client.describe_collection(report.collection)["fields"]]
        assert not [name for name in fields if name.startswith(("attr_", "attrx_"))]
        client.alter_collection_properties(
            report.collection, properties=manifest_property(replace(report.manifest, extra=extra))
        )
    finally:
        client.close()
    reference = reference_for(catalog, encoder)
    queries = unit_queries(2, seed=6)
    with open_milvus_index(fresh) as milvus:
        assert milvus.columns is None
        assert milvus.expression({"tag": "a"}) == '(attributes["tag"] == "a")'
        for filters in ({"tag": '" or id != "'}, {SPACED: "Grey", "gender": ["Men", "Women"]}):
            assert_same_hits(
                ids_scores(milvus.search(queries, 10, filters, target="image")),
                reference.search("images", queries, 10, filters),
            )
    assert "JSON only" in describe_milvus_index(fresh)
    changed = [dict(row, tag="relabelled") for row in tagged_rows(2)]
    update_milvus_index(
        fresh, encoder, write_catalog(tmp_path / "changed", changed), progress=False
    )
    with open_milvus_index(fresh) as milvus:
        hits = milvus.search(queries, 10, {"tag": "relabelled"}, target="image")
        assert sorted(h.id for h in hits[0]) == sorted(row["id"] for row in changed)
