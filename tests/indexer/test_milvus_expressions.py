"""indexer.milvus.expressions and the attribute columns of indexer.milvus.schema: filters
become expressions on identifier columns in which every value is one string literal (no
Milvus needed; test_milvus_index.py runs them on Milvus Lite)."""

from __future__ import annotations

import json
import re

import pytest

from indexer.errors import (
    IndexCorruptError,
    IndexerError,
    InvalidFilterError,
    UnknownAttributeError,
)
from indexer.manifest import FORMAT_VERSION, Manifest
from indexer.milvus.expressions import (
    MATCH_NOTHING,
    excluding_ids,
    filter_expression,
    ids_expression,
    json_filter_expression,
    literal,
)
from indexer.milvus.schema import (
    COLUMNS_KEY,
    MAX_ATTRIBUTE_COLUMNS,
    attribute_column,
    attribute_columns,
    columns_of,
    manifest_of,
    manifest_property,
)

KNOWN = {"gender", "articleType"}
COLUMNS = attribute_columns(KNOWN)
HOSTILE = ['" or id != "', "' or id != '", "\\", '\\"', "a\nb", "Bébé ☂ 👗", "", "]) or (1 == 1"]
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")


@pytest.mark.parametrize("value", HOSTILE)
def test_a_literal_is_one_string_token_that_reads_back_as_the_value(value: str) -> None:
    text = literal(value)
    assert text.startswith('"') and text.endswith('"')
    assert json.loads(text) == value  # Milvus's escapes are JSON's for these characters
    inner = text[1:-1].replace("\\\\", "").replace('\\"', "")
    assert '"' not in inner and "\n" not in inner  # nothing ends the literal early


def test_plain_names_keep_their_name_and_others_are_escaped_into_field_names() -> None:
    assert attribute_column("gender") == "attr_gender"
    assert attribute_column("articleType") == "attr_articleType"
    assert attribute_column("year_2") == "attr_year_2"
    odd = [
        "base colour",
        "Base Colour",
        "base-colour",
        "base_colour ",
        "名前",
        "",
        'x" or id != "y',
        "a" * 65,
        "attr_x y",
        "in",
        *HOSTILE,
    ]
    odd = list(dict.fromkeys(odd))
    columns = [attribute_column(name) for name in odd]
    assert all(FIELD_NAME.fullmatch(column) for column in columns), columns
    assert len(set(columns)) == len(odd)  # no two names share a column
    assert all(column.startswith("attrx_") for column in columns if column != "attr_in")
    assert attribute_column("base colour").startswith("attrx_base_colour_")
    assert attribute_column("名前") == attribute_column("名前")  # deterministic
    assert columns == [attribute_column(name) for name in odd]  # across calls


def test_attribute_columns_map_every_name_and_refuse_too_many() -> None:
    assert attribute_columns(["gender", "base colour", "gender"]) == {
        "base colour": attribute_column("base colour"),
        "gender": "attr_gender",
    }
    assert attribute_columns([]) == {}
    attribute_columns(f"a{i}" for i in range(MAX_ATTRIBUTE_COLUMNS))
    with pytest.raises(IndexerError, match="at most 56"):
        attribute_columns(f"a{i}" for i in range(MAX_ATTRIBUTE_COLUMNS + 1))


def test_filters_are_column_lookups_anded_in_a_stable_order() -> None:
    expression = filter_expression({"gender": "Men", "articleType": ["Tshirts", "Shirts"]}, COLUMNS)
    assert expression == ('(attr_articleType in ["Shirts", "Tshirts"]) and (attr_gender == "Men")')
    assert filter_expression({"gender": ["Men", "Men"]}, COLUMNS) == '(attr_gender == "Men")'
    assert filter_expression(None, COLUMNS) == filter_expression({}, COLUMNS) == ""


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_value_is_one_literal_on_the_column(value: str) -> None:
    assert filter_expression({"gender": value}, COLUMNS) == f"(attr_gender == {literal(value)})"
    both = filter_expression({"gender": [value, "Men"]}, COLUMNS)
    assert both == f"(attr_gender in [{', '.join(literal(v) for v in sorted([value, 'Men']))}])"


def test_an_empty_value_list_matches_nothing_and_unknown_names_are_refused() -> None:
    assert filter_expression({"gender": []}, COLUMNS) == f"({MATCH_NOTHING})"
    with pytest.raises(
        UnknownAttributeError, match=r"unknown filter attribute 'colour'.*articleType, gender"
    ):
        filter_expression({"colour": "Red"}, COLUMNS)
    with pytest.raises(UnknownAttributeError, match="'attr_gender'"):
        filter_expression({"attr_gender": "Men"}, COLUMNS)  # a column is not a name
    with pytest.raises(InvalidFilterError):
        filter_expression({"gender": {"nested": "x"}}, COLUMNS)


def test_a_column_map_is_never_trusted_to_be_syntax() -> None:
    with pytest.raises(IndexCorruptError, match="not a valid Milvus field name"):
        filter_expression({"gender": "Men"}, {"gender": 'attr_gender == "Men" or id'})


def manifest_with(extra: dict) -> Manifest:
    return Manifest(
        format_version=FORMAT_VERSION,
        model_id="m",
        embed_dim=4,
        count=1,
        index_type="FLAT",
        search_params={},
        created_at="2026-01-01T00:00:00Z",
        files={},
        version="shop__v000001",
        product_weights=[0.9, 0.1],
        extra={"backend": "milvus", **extra},
    )


def test_the_column_map_round_trips_through_the_collection_manifest() -> None:
    columns = attribute_columns(["gender", "base colour", "名前"])
    stored = manifest_property(manifest_with({COLUMNS_KEY: columns}))
    assert json.loads(next(iter(stored.values())))["extra"][COLUMNS_KEY] == columns
    manifest = manifest_of(stored, "shop__v000001")
    assert manifest is not None and columns_of(manifest, "shop__v000001") == columns
    legacy = manifest_of(manifest_property(manifest_with({})), "shop__v000001")
    assert legacy is not None and columns_of(legacy, "shop__v000001") is None
    for damaged in ({"gender": "id"}, {"gender": "attr_g or 1"}, ["attr_gender"]):
        with pytest.raises(IndexCorruptError, match="damaged attribute column map"):
            columns_of(manifest_with({COLUMNS_KEY: damaged}), "shop__v000001")


def test_an_index_without_columns_filters_on_json_paths() -> None:
    expression = json_filter_expression(
        {"gender": "Men", "articleType": ["Tshirts", "Shirts"]}, KNOWN
    )
    assert expression == (
        '(attributes["gender"] == "Men") and '
        '(attributes["articleType"] == "Shirts" or attributes["articleType"] == "Tshirts")'
    )
    assert json_filter_expression({"gender": []}, KNOWN) == f"({MATCH_NOTHING})"
    with pytest.raises(UnknownAttributeError, match="unknown filter attribute 'colour'"):
        json_filter_expression({"colour": "Red"}, KNOWN)


def test_id_lists() -> None:
    assert ids_expression(["1", 'x"y']) == 'id in ["1", "x\\"y"]'
    assert ids_expression([]) == MATCH_NOTHING
    assert excluding_ids("", ["7"]) == 'not (id in ["7"])'
    assert excluding_ids("a == 1", ["7"]) == '(a == 1) and not (id in ["7"])'
    assert excluding_ids("a == 1", []) == "a == 1"
