"""The OpenAPI document says what the API does: schemathesis, in-process, every built-in
check (`--checks all`), a bounded number of seeded examples per operation."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from app_fakes import ADMIN_TOKEN, FakeEncoder, FakeIndex, make_settings, sample_products
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

from app import create_app

EXAMPLES_PER_OPERATION = 30

load_all_checks()
ALL_CHECKS = CHECKS.get_all()

# Requests that the schema allows but the data refuses: a filter naming an attribute the
# catalogue lacks, or a file field that is not a photo. Both are a 422 by design.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422"]
"""


def _schema():  # type: ignore[no-untyped-def]
    """The app on fakes, with admin on; built at collection (schemathesis's fixture-based
    loader does not work with this pytest). Nothing is written to the settings' paths."""
    encoder = FakeEncoder()
    index = FakeIndex(sample_products(48), encoder)
    app_settings = make_settings(Path(tempfile.gettempdir()), admin={"token": ADMIN_TOKEN})
    app = create_app(app_settings, model=encoder, index=index)
    config = SchemathesisConfig.from_str(CONFIG)
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


schema = _schema()


@pytest.fixture
def api_schema():  # type: ignore[no-untyped-def]
    return schema


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_its_contract(case) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(checks=ALL_CHECKS)


def test_every_error_is_one_model(api_schema) -> None:  # type: ignore[no-untyped-def]
    document = api_schema.raw_schema
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    content = response["content"]["application/json"]["schema"]
                    assert content == {"$ref": "#/components/schemas/ErrorResponse"}, (
                        path,
                        method,
                        status,
                    )
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_admin_routes_declare_bearer_auth(api_schema) -> None:  # type: ignore[no-untyped-def]
    document = api_schema.raw_schema
    schemes = document["components"]["securitySchemes"]
    ((name, scheme),) = schemes.items()
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    reload = document["paths"]["/v1/admin/reload"]["post"]
    assert reload["security"] == [{name: []}]
    assert {"401", "403", "404"} <= set(reload["responses"])


def test_filter_limits_are_in_the_schema(api_schema) -> None:  # type: ignore[no-untyped-def]
    document = api_schema.raw_schema
    text = document["components"]["schemas"]["TextSearchRequest"]["properties"]["filters"]
    assert "maxProperties" in str(text) and "minItems" in str(text), text
