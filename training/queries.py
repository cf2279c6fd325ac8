"""Shopper queries built from a product's attributes, for multi-field training.

A title is how a shop names one product; a shopper types "navy blue shirts" or
"shirts for men". Each *field* turns some of a product's attributes into such a
query, in one of a few wordings. What makes two products relevant to a field's
query is its *key* (the attribute values it uses), never the wording: every product
of a batch that shares the key is a positive for that query (see
training.losses.multi_positive_loss).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from models import Product

Key = tuple[str, ...]
Wordings = Callable[[Key], list[str]]

# Attribute values that mean "unknown": such a product asks no query of that field.
MISSING = frozenset({"", "na", "n/a", "none", "null", "nan", "-"})

_GENDER_WORDS = {"men": "men", "women": "women", "boys": "boys", "girls": "girls"}


def _cased(text: str) -> list[str]:
    """The catalogue's spelling and the lower-case one shoppers type."""
    return list(dict.fromkeys([text, text.lower()]))


def _gender(value: str) -> str:
    return _GENDER_WORDS.get(value.lower(), value.lower())


def _one(key: Key) -> list[str]:
    return _cased(key[0])


def _colour_article(key: Key) -> list[str]:
    colour, article = key
    return [
        f"{colour} {article}",
        f"{colour.lower()} {article.lower()}",
        f"{article.lower()} in {colour.lower()}",
    ]


def _gender_article(key: Key) -> list[str]:
    gender, article = key
    word = _gender(gender)
    return [
        f"{gender} {article}",
        f"{word} {article.lower()}",
        f"{article.lower()} for {word}",
    ]


def _usage(key: Key) -> list[str]:
    return [*_cased(key[0]), f"{key[0].lower()} wear"]


def _season(key: Key) -> list[str]:
    return [*_cased(key[0]), f"{key[0].lower()} collection"]


@dataclass(frozen=True)
class Field:
    """A kind of shopper query: which attributes it uses and how it may be worded."""

    name: str
    attributes: tuple[str, ...]
    wordings: Wordings

    def key(self, product: Product) -> Key | None:
        """The attribute values this field reads, or None when any is unknown."""
        values = tuple(product.attributes.get(name, "").strip() for name in self.attributes)
        if any(value.lower() in MISSING for value in values):
            return None
        return values


FIELDS: dict[str, Field] = {
    field.name: field
    for field in (
        Field("articleType", ("articleType",), _one),
        Field("baseColour", ("baseColour",), _one),
        Field("colour_article", ("baseColour", "articleType"), _colour_article),
        Field("gender_article", ("gender", "articleType"), _gender_article),
        Field("subCategory", ("subCategory",), _one),
        Field("masterCategory", ("masterCategory",), _one),
        Field("usage", ("usage",), _usage),
        Field("season", ("season",), _season),
    )
}


@dataclass(frozen=True)
class FieldQueries:
    """One field's queries for a batch: U distinct keys, each worded once.

    `positives[u, j]` is True where batch product j has query u's key.
    """

    field: str
    texts: list[str]
    positives: torch.Tensor  # (U, B) bool


def field_queries(
    field: Field, products: Sequence[Product], rng: random.Random
) -> FieldQueries | None:
    """A batch's queries for one field, one per distinct key; None when fewer than two
    distinct keys (a query with nothing to tell apart teaches nothing)."""
    keys = [field.key(product) for product in products]
    distinct = list(dict.fromkeys(key for key in keys if key is not None))
    if len(distinct) < 2:
        return None
    texts = [rng.choice(field.wordings(key)) for key in distinct]
    positives = torch.tensor([[key == other for other in keys] for key in distinct])
    return FieldQueries(field.name, texts, positives)


def batch_queries(
    fields: Mapping[str, float] | Sequence[str], products: Sequence[Product], rng: random.Random
) -> list[FieldQueries]:
    """Every configured field's queries for a batch of products, in `fields` order."""
    out = []
    for name in fields:
        queries = field_queries(FIELDS[name], products, rng)
        if queries is not None:
            out.append(queries)
    return out


def query_rng(seed: int, epoch: int, step: int) -> random.Random:
    """The wording of a batch's queries depends only on (seed, epoch, step), so a run
    resumed in the middle of an epoch words its queries as an uninterrupted one."""
    return random.Random(f"queries:{seed}:{epoch}:{step}")


def all_wordings(fields: Sequence[str], products: Sequence[Product]) -> list[str]:
    """Every query the fields can word for these products: a word vocabulary (Bi-LSTM
    towers) built from titles alone would map "Tshirts" or "Topwear" to unknown."""
    texts: dict[str, None] = {}
    for name in fields:
        field = FIELDS[name]
        for key in {field.key(product) for product in products} - {None}:
            texts.update(dict.fromkeys(field.wordings(key)))  # type: ignore[arg-type]
    return list(texts)
