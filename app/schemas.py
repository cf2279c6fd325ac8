"""Request and response bodies."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    WithJsonSchema,
)

MAX_QUERY_CHARS = 512
MAX_K = 100
DEFAULT_K = 10

# The side of the catalogue searched: product photos, titles, or product vectors (photo
# and title fused at index build; absent from indices built before them).
Target = Literal["image", "text", "product"]


def _value_list(value: object) -> list[str]:
    """A filter value: one string, or a non-empty list of strings (any of them matches)."""
    values = [value] if isinstance(value, str) else value
    if (
        not isinstance(values, list)
        or not values
        or len(values) > 100
        or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in values)
    ):
        raise ValueError("must be a string or a non-empty list of strings")
    return values


_VALUE_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 200}
# A string or a list of them, as the validator above takes them (one list after it).
FilterValues = Annotated[
    list[str],
    BeforeValidator(_value_list),
    WithJsonSchema(
        {
            "anyOf": [
                _VALUE_SCHEMA,
                {"type": "array", "items": _VALUE_SCHEMA, "minItems": 1, "maxItems": 100},
            ]
        }
    ),
]
Filters = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=100)], FilterValues],
    Field(max_length=20),
]
FILTERS_ADAPTER: TypeAdapter[dict[str, list[str]]] = TypeAdapter(Filters)
K = Annotated[int, Field(ge=1, le=MAX_K, description="How many results, 1-100.")]


class TextSearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUERY_CHARS),
        Field(description="The text to search for, 1-512 characters after trimming."),
    ]
    k: K = DEFAULT_K
    target: Target = Field(
        default="image",
        description='"image": search product photos; "text": product titles; "product": '
        "product vectors (photo and title together).",
    )
    filters: Filters | None = Field(
        default=None,
        description='Exact attribute matches, e.g. {"gender": "Men", "articleType": ["Shirts"]}.',
    )


class SearchResult(BaseModel):
    id: str
    score: float
    text: str
    image_url: str
    attributes: dict[str, str]


class SearchResponse(BaseModel):
    results: list[SearchResult]
    took_ms: float
    model: str


class ProductPublic(BaseModel):
    id: str
    text: str
    image_url: str
    attributes: dict[str, str]


class Facets(BaseModel):
    attributes: dict[str, list[str]]
    count: int
    model: str
    targets: list[Target] = Field(description="The targets the served index can search.")


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    model: str
    products: int


class ReloadResponse(BaseModel):
    status: str
    model: str
    products: int
    previous_products: int
    took_ms: float
