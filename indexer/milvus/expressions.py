"""Search filters as Milvus boolean expressions, built safely.

Each attribute is a scalar VARCHAR column with an INVERTED index (indexer.milvus.schema),
so a filter is a lookup of values on that column, not a scan of every row's JSON:

    filter_expression({"gender": "Men", "articleType": ["Shirts", "Tshirts"]}, columns)
    -> '(attr_articleType in ["Shirts", "Tshirts"]) and (attr_gender == "Men")'

Attribute values are data, never syntax: every value becomes one quoted string literal
(`literal`), so a value such as `" or id != "` is a string that no product has, not a
change to the expression. Column names come from the index's manifest and are checked to
be identifiers before use. Unknown attributes are refused before any expression is
built, with the message the FAISS backend gives.

An index built before attributes had columns (its manifest has no column map) is
filtered on JSON paths of its `attributes` field instead (`json_filter_expression`):
right, but a scan of every row on Milvus Lite; rebuild it for fast filters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence

from indexer.errors import IndexCorruptError
from indexer.filters import Filters, check_filters

ATTRIBUTES_FIELD = "attributes"  # the JSON field holding {name: value}
ID_FIELD = "id"
MATCH_NOTHING = f'{ID_FIELD} == "" and {ID_FIELD} != ""'  # catalogue ids are never empty
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def literal(value: str) -> str:
    """`value` as a Milvus string literal: double quotes, with backslash, quote and control
    characters escaped (JSON's escapes, which Milvus's grammar shares); other characters,
    non-ASCII included, stand as they are."""
    if not isinstance(value, str):
        raise TypeError(f"a filter value must be a string, got {value!r}")
    return json.dumps(value, ensure_ascii=False)


def column_name(column: str) -> str:
    """`column` if it is an identifier (what a field name in an expression must be), else
    IndexCorruptError: a column map is never trusted to be syntax."""
    if not isinstance(column, str) or not _IDENTIFIER.fullmatch(column):
        raise IndexCorruptError(f"attribute column {column!r} is not a valid Milvus field name")
    return column


def _column_any_of(column: str, values: Sequence[str]) -> str:
    if not values:
        return MATCH_NOTHING
    if len(values) == 1:
        return f"{column} == {literal(values[0])}"
    return f"{column} in [{', '.join(literal(value) for value in values)}]"


def filter_expression(filters: Filters | None, columns: Mapping[str, str]) -> str:
    """The expression keeping the products that match every filter ("" for no filter):
    `column == "v"` or `column in ["v1", "v2"]` per attribute, anded.

    columns: {attribute: column} of the index; UnknownAttributeError for any other name.
    """
    wanted = check_filters(filters, columns)
    if not wanted:
        return ""
    return " and ".join(
        f"({_column_any_of(column_name(columns[name]), sorted(set(values)))})"
        for name, values in sorted(wanted.items())
    )


def attribute(name: str) -> str:
    """The JSON path of attribute `name`: attributes["name"] (indexes without columns)."""
    return f"{ATTRIBUTES_FIELD}[{literal(name)}]"


def _json_any_of(name: str, values: Sequence[str]) -> str:
    # `==` chains rather than `in [...]`: JSON paths take `in` on Milvus but not on
    # milvus-lite, and both take `==` and `or`.
    if not values:
        return MATCH_NOTHING
    path = attribute(name)
    return " or ".join(f"{path} == {literal(value)}" for value in values)


def json_filter_expression(filters: Filters | None, known: Collection[str]) -> str:
    """filter_expression for an index built before attributes had columns: the same
    filters on JSON paths of the `attributes` field (a row scan on Milvus Lite).

    known: the attribute names of the index; UnknownAttributeError for any other.
    """
    wanted = check_filters(filters, known)
    if not wanted:
        return ""
    return " and ".join(
        f"({_json_any_of(name, sorted(set(values)))})" for name, values in wanted.items()
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
