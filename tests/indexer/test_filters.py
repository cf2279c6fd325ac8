"""indexer.filters: exact-match attribute filters."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.errors import InvalidFilterError, UnknownAttributeError
from indexer.filters import AttributeIndex, check_filters, normalise_filters

RECORDS = [
    (10, {"gender": "Men", "articleType": "Shirts", "year": "2012"}),
    (11, {"gender": "Women", "articleType": "Tshirts", "year": "2012"}),
    (12, {"gender": "Men", "articleType": "Tshirts", "year": ""}),
    (14, {"gender": "Men", "articleType": "Jeans"}),  # no year at all
]


@pytest.fixture
def attributes() -> AttributeIndex:
    return AttributeIndex.from_records(RECORDS)


def test_no_filter_means_everything(attributes: AttributeIndex) -> None:
    assert attributes.allowed(None) is None
    assert attributes.allowed({}) is None


def test_value_and_list_of_values(attributes: AttributeIndex) -> None:
    assert attributes.allowed({"gender": "Men"}).tolist() == [10, 12, 14]
    both = {"gender": "Men", "articleType": ["Shirts", "Tshirts"]}
    assert attributes.allowed(both).tolist() == [10, 12]
    assert attributes.allowed({"year": 2012}).tolist() == [10, 11]
    assert attributes.allowed({"year": ""}).tolist() == [12]


def test_unknown_value_or_empty_list_matches_nothing(attributes: AttributeIndex) -> None:
    assert attributes.allowed({"gender": "Unisex"}).tolist() == []
    assert attributes.allowed({"gender": []}).tolist() == []


def test_unknown_attribute_names_the_known_ones(attributes: AttributeIndex) -> None:
    with pytest.raises(UnknownAttributeError, match="'colour'.*articleType, gender, year"):
        attributes.allowed({"colour": "Red"})


@pytest.mark.parametrize(
    "bad", [{"gender": None}, {"gender": {"a": 1}}, {"gender": [1.5]}, {"gender": True}, ["gender"]]
)
def test_bad_filter_values_are_clear_errors(bad) -> None:
    with pytest.raises(InvalidFilterError):
        normalise_filters(bad)


def test_values_are_sorted_distinct_and_non_empty(attributes: AttributeIndex) -> None:
    assert attributes.values() == {
        "articleType": ["Jeans", "Shirts", "Tshirts"],
        "gender": ["Men", "Women"],
        "year": ["2012"],
    }


def test_allowed_is_sorted_int64() -> None:
    index = AttributeIndex.from_records([(5, {"a": "x"}), (2, {"a": "x"}), (9, {"a": "y"})])
    allowed = index.allowed({"a": ("x",)})
    assert allowed.dtype == np.int64 and allowed.tolist() == [2, 5]


def test_check_filters_is_the_one_rule_for_names_and_shapes() -> None:
    known = ["gender", "articleType"]
    assert check_filters({"gender": "Men", "articleType": ["Shirts"]}, known) == {
        "gender": ["Men"],
        "articleType": ["Shirts"],
    }
    assert check_filters(None, known) == {}
    with pytest.raises(UnknownAttributeError, match="attributes 'colour', 'size'; .*articleType"):
        check_filters({"size": "M", "colour": "Red", "gender": "Men"}, known)
    with pytest.raises(InvalidFilterError):
        check_filters({"gender": [1.5]}, known)
