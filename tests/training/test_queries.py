"""training.queries: shopper queries from attributes, seeded and well formed."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from models import Product, read_catalog
from training.queries import FIELDS, all_wordings, batch_queries, field_queries, query_rng


def _product(pid: str, **attributes: str) -> Product:
    return Product(pid, Path(f"/p/{pid}.jpg"), f"title {pid}", attributes)


SHIRT = _product("1", gender="Men", articleType="Shirts", baseColour="Navy Blue", usage="Casual")
SHIRT_2 = _product("2", gender="Women", articleType="Shirts", baseColour="Navy Blue", usage="NA")
WATCH = _product("3", gender="Men", articleType="Watches", baseColour="Black", usage="Casual")
UNKNOWN = _product("4", gender="Men", articleType="", baseColour="Black")


def test_keys_read_the_fields_attributes_and_unknown_values_give_none() -> None:
    assert FIELDS["colour_article"].key(SHIRT) == ("Navy Blue", "Shirts")
    assert FIELDS["gender_article"].key(WATCH) == ("Men", "Watches")
    assert FIELDS["articleType"].key(UNKNOWN) is None
    assert FIELDS["usage"].key(SHIRT_2) is None  # "NA"
    assert FIELDS["season"].key(SHIRT) is None  # no such attribute


def test_positives_are_every_product_sharing_the_key() -> None:
    queries = field_queries(
        FIELDS["articleType"], [SHIRT, WATCH, SHIRT_2, UNKNOWN], random.Random(0)
    )
    assert queries is not None
    assert [text.lower() for text in queries.texts] == ["shirts", "watches"]
    assert queries.positives.tolist() == [[True, False, True, False], [False, True, False, False]]


def test_a_field_with_one_distinct_key_in_the_batch_asks_nothing() -> None:
    assert field_queries(FIELDS["baseColour"], [SHIRT, SHIRT_2], random.Random(0)) is None


def test_wording_is_seeded_and_varies(sample_catalog: Path) -> None:
    products = read_catalog(sample_catalog).products[:128]
    fields = list(FIELDS)
    first = batch_queries(fields, products, query_rng(0, 1, 5))
    again = batch_queries(fields, products, query_rng(0, 1, 5))
    assert [q.texts for q in first] == [q.texts for q in again]
    other_step = batch_queries(fields, products, query_rng(0, 1, 6))
    assert [q.texts for q in first] != [q.texts for q in other_step]


def test_queries_are_never_empty_nor_repeat_a_field(sample_catalog: Path) -> None:
    products = read_catalog(sample_catalog).products
    for step in range(20):
        batch = random.Random(step).sample(products, 64)
        for queries in batch_queries(list(FIELDS), batch, query_rng(0, 0, step)):
            assert len(set(queries.texts)) == len(queries.texts)
            assert queries.positives.any(dim=1).all()
            for text in queries.texts:
                assert text.strip() and text == " ".join(text.split())
                words = text.lower().split()
                # no attribute value is said twice ("shirts shirts", "men men shirts")
                assert len(words) == len(set(words)), text


def test_all_wordings_cover_the_batch_queries(sample_catalog: Path) -> None:
    products = read_catalog(sample_catalog).products
    vocabulary = set(all_wordings(list(FIELDS), products))
    for queries in batch_queries(list(FIELDS), products[:64], query_rng(0, 0, 0)):
        assert set(queries.texts) <= vocabulary


def test_unknown_fields_in_a_config_are_a_clear_error() -> None:
    from models import ConfigError
    from training.config import parse_config

    with pytest.raises(ConfigError, match="unknown query field.*colour"):
        parse_config({"fields": {"colour": 1.0}}, "t")
    with pytest.raises(ConfigError, match="weight >= 0"):
        parse_config({"fields": {"articleType": "high"}}, "t")
    assert parse_config({"fields": {"articleType": 0.5, "season": 0}}, "t").fields == {
        "articleType": 0.5
    }
