"""Exact-match attribute filters, evaluated in memory over the products of an index.

A filter maps attribute names to a value or a list of values:
`{"gender": "Men", "articleType": ["Shirts", "Tshirts"]}` keeps the products whose
gender is Men AND whose articleType is Shirts OR Tshirts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from indexer.errors import InvalidFilterError, UnknownAttributeError

Filters = Mapping[str, str | Sequence[str]]


@dataclass(frozen=True)
class _Column:
    codes: np.ndarray  # (N,) int32 index into values, -1 where the product lacks the attribute
    values: list[str]
    lookup: dict[str, int]


def normalise_filters(filters: Filters | None) -> dict[str, list[str]]:
    """{name: [values]}: a lone value becomes a one-item list; integers become strings."""
    if not filters:
        return {}
    if not isinstance(filters, Mapping):
        raise InvalidFilterError(
            f"filters must be a mapping of attribute to values, got {filters!r}"
        )
    result: dict[str, list[str]] = {}
    for name, wanted in filters.items():
        items = [wanted] if isinstance(wanted, (str, int)) else wanted
        if isinstance(items, (bytes, Mapping)) or not isinstance(items, Iterable):
            raise InvalidFilterError(
                f"filter {name!r} must be a string or a list of strings, got {wanted!r}"
            )
        values = []
        for value in items:
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise InvalidFilterError(f"filter {name!r} holds {value!r}; values must be strings")
            values.append(str(value))
        result[str(name)] = values
    return result


def check_filters(filters: Filters | None, known: Collection[str]) -> dict[str, list[str]]:
    """The filters normalised ({name: [values]}), every name one of `known` (the index's
    attribute names): the one check every backend and the service run.

    Raises InvalidFilterError for a malformed filter, UnknownAttributeError naming the
    unknown attributes and the known ones.
    """
    wanted = normalise_filters(filters)
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise UnknownAttributeError(
            f"unknown filter attribute{plural} {listed}; "
            f"this index knows: {', '.join(sorted(known)) or 'none'}"
        )
    return wanted


class AttributeIndex:
    """Product attributes as integer codes, for fast filtering. nums: (N,) int64."""

    def __init__(self, nums: np.ndarray, columns: dict[str, _Column]) -> None:
        self.nums = nums
        self._columns = columns

    @classmethod
    def from_records(cls, items: Iterable[tuple[int, Mapping[str, str]]]) -> AttributeIndex:
        """Build from (num, attributes) pairs."""
        nums: list[int] = []
        raw: dict[str, dict[int, str]] = {}
        for position, (num, attributes) in enumerate(items):
            nums.append(num)
            for name, value in attributes.items():
                raw.setdefault(name, {})[position] = value
        size = len(nums)
        columns = {name: _encode(by_row, size) for name, by_row in raw.items()}
        return cls(np.asarray(nums, dtype=np.int64), columns)

    @property
    def names(self) -> list[str]:
        return sorted(self._columns)

    def values(self) -> dict[str, list[str]]:
        """{attribute: sorted distinct non-empty values}."""
        return {name: sorted(v for v in self._columns[name].values if v) for name in self.names}

    def allowed(self, filters: Filters | None) -> np.ndarray | None:
        """Sorted nums (M,) int64 of the products matching every filter; None for no filter."""
        if len(self.nums) == 0:  # an emptied index knows no attribute: nothing matches
            wanted = normalise_filters(filters)
            return np.zeros(0, dtype=np.int64) if wanted else None
        wanted = check_filters(filters, self._columns)
        if not wanted:
            return None
        mask = np.ones(len(self.nums), dtype=bool)
        for name, values in wanted.items():
            column = self._columns[name]
            codes = [column.lookup[v] for v in values if v in column.lookup]
            mask &= np.isin(column.codes, np.asarray(codes, dtype=np.int32))
        return np.sort(self.nums[mask])


def _encode(by_row: dict[int, str], size: int) -> _Column:
    values = sorted(set(by_row.values()))
    lookup = {value: code for code, value in enumerate(values)}
    codes = np.full(size, -1, dtype=np.int32)
    for row, value in by_row.items():
        codes[row] = lookup[value]
    return _Column(codes, values, lookup)
