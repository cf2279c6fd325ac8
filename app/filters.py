"""Search filters that do not come in a JSON body: a JSON string (a form field, a query
parameter) and attribute query parameters (`?gender=Men&articleType=Shirts`)."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError

from app.errors import InvalidFiltersError, describe_validation_errors
from app.schemas import FILTERS_ADAPTER


def parse_filters_json(raw: str | None) -> dict[str, list[str]] | None:
    """'{"gender": "Men"}' -> {"gender": ["Men"]}; None for nothing; 422 when malformed."""
    if raw is None or not raw.strip():
        return None
    try:
        return FILTERS_ADAPTER.validate_json(raw) or None
    except ValidationError as exc:
        problems = describe_validation_errors(
            [{**e, "loc": ("filters", *e["loc"])} for e in exc.errors()]
        )
        raise InvalidFiltersError(
            f'filters must be a JSON object like {{"gender": "Men"}}: {problems}'
        ) from exc


def merge_query_filters(
    raw_json: str | None, params: Iterable[tuple[str, str]]
) -> dict[str, list[str]] | None:
    """The `filters` JSON parameter plus attribute parameters (a repeated name matches
    any of its values), checked like a JSON body's filters."""
    merged = parse_filters_json(raw_json) or {}
    for name, value in params:
        values = merged.setdefault(name, [])
        if value not in values:
            values.append(value)
    if not merged:
        return None
    try:
        return FILTERS_ADAPTER.validate_python(merged)
    except ValidationError as exc:
        problems = describe_validation_errors(
            [{**e, "loc": ("filters", *e["loc"])} for e in exc.errors()]
        )
        raise InvalidFiltersError(f"bad filter parameters: {problems}") from exc
