"""indexer.milvus.expressions: filters become Milvus expressions in which every value is
one string literal (no Milvus needed; test_milvus_filters.py runs them on Milvus Lite)."""

from __future__ import annotations

import json

import pytest

from indexer.errors import InvalidFilterError, UnknownAttributeError
from indexer.milvus.expressions import (
    MATCH_NOTHING,
    excluding_ids,
    filter_expression,
    ids_expression,
    literal,
)

KNOWN = {"gender", "articleType"}


@pytest.mark.parametrize(
    "value",
    ['" or id != "', "' or id != '", "\\", '\\"', "a\nb", "Bébé ☂ 👗", "", "]) or (1 == 1"],
)
def test_a_literal_is_one_string_token_that_reads_back_as_the_value(value: str) -> None:
    text = literal(value)
    assert text.startswith('"') and text.endswith('"')
    assert json.loads(text) == value  # Milvus's escapes are JSON's for these characters
    inner = text[1:-1].replace("\\\\", "").replace('\\"', "")
    assert '"' not in inner and "\n" not in inner  # nothing ends the literal early


def test_filters_are_anded_and_values_ored_in_a_stable_order() -> None:
    expression = filter_expression({"gender": "Men", "articleType": ["Tshirts", "Shirts"]}, KNOWN)
    assert expression == (
        '(attributes["gender"] == "Men") and '
        '(attributes["articleType"] == "Shirts" or attributes["articleType"] == "Tshirts")'
    )
    assert filter_expression(None, KNOWN) == filter_expression({}, KNOWN) == ""


def test_an_empty_value_list_matches_nothing_and_unknown_names_are_refused() -> None:
    assert filter_expression({"gender": []}, KNOWN) == f"({MATCH_NOTHING})"
    with pytest.raises(
        UnknownAttributeError, match="unknown filter attribute 'colour'.*articleType"
    ):
        filter_expression({"colour": "Red"}, KNOWN)
    with pytest.raises(InvalidFilterError):
        filter_expression({"gender": {"nested": "x"}}, KNOWN)


def test_id_lists() -> None:
    assert ids_expression(["1", 'x"y']) == 'id in ["1", "x\\"y"]'
    assert ids_expression([]) == MATCH_NOTHING
    assert excluding_ids("", ["7"]) == 'not (id in ["7"])'
    assert excluding_ids("a == 1", ["7"]) == '(a == 1) and not (id in ["7"])'
    assert excluding_ids("a == 1", []) == "a == 1"
