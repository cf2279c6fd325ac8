"""Search filters as Milvus boolean expressions, built safely.

Attribute values are data, never syntax: every value and key becomes one quoted string
literal (`literal`), so a value such as `" or id != "` is a string that no product has,
not a change to the expression. Unknown attributes are refused before any expression is
built, with the message the FAISS backend gives.

    filter_expression({"gender": "Men", "articleType": ["Shirts", "Tshirts"]}, known)
    -> '(attributes["gender"] == "Men") and (attributes["articleType"] == "Shirts" or
        attributes["articleType"] == "Tshirts")'
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence

from indexer.filters import Filters, check_filters

ATTRIBUTES_FIELD = "attributes"  # the JSON field holding {name: value}
ID_FIELD = "id"
MATCH_NOTHING = f'{ID_FIELD} == "" and {ID_FIELD} != ""'  # catalogue ids are never empty


def literal(value: str) -> str:
    """`value` as a Milvus string literal: double quotes, with backslash, quote and control
    characters escaped (JSON's escapes, which Milvus's grammar shares); other characters,
    non-ASCII included, stand as they are."""
    if not isinstance(value, str):
        raise TypeError(f"a filter value must be a string, got {value!r}")
    return json.dumps(value, ensure_ascii=False)


def attribute(name: str) -> str:
    """The JSON path of attribute `name`: attributes["name"]."""
    return f"{ATTRIBUTES_FIELD}[{literal(name)}]"


def _any_of(name: str, values: Sequence[str]) -> str:
    # `==` chains rather than `in [...]`: JSON paths take `in` on Milvus but not on
    # milvus-lite, and both take `==` and `or`.
    if not values:
        return MATCH_NOTHING
    path = attribute(name)
    return " or ".join(f"{path} == {literal(value)}" for value in values)


def filter_expression(filters: Filters | None, known: Collection[str]) -> str:
    """The expression keeping the products that match every filter ("" for no filter).

    known: the attribute names of the index; UnknownAttributeError for any other.
    """
    wanted = check_filters(filters, known)
    if not wanted:
        return ""
    return " and ".join(
        f"({_any_of(name, sorted(set(values)))})" for name, values in wanted.items()
    )


def excluding_ids(expression: str, ids: Sequence[str]) -> str:
    """`expression` and none of `ids` (by primary key)."""
    if not ids:
        return expression
    listed = ", ".join(literal(product_id) for product_id in ids)
    not_ids = f"not ({ID_FIELD} in [{listed}])"
    return f"({expression}) and {not_ids}" if expression else not_ids


def ids_expression(ids: Sequence[str]) -> str:
    """The products whose id is one of `ids`."""
    if not ids:
        return MATCH_NOTHING
    return f"{ID_FIELD} in [{', '.join(literal(product_id) for product_id in ids)}]"
