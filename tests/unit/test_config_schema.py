"""The JSON Schemas sfbulk validates with are themselves valid (checked here, not at every start)."""

from __future__ import annotations

from typing import Any

import pytest

from sfbulk.config import yaml_config
from sfbulk.connector.bundle import schema as bundle_schema


@pytest.mark.parametrize(
    "name, document",
    [
        ("sfbulk/config/schema.yaml", yaml_config.schema()),
        ("CONNECTOR_SCHEMA", bundle_schema.CONNECTOR_SCHEMA),
        ("OPERATION_SCHEMA", bundle_schema.OPERATION_SCHEMA),
    ],
)
def test_schema_is_valid_against_its_metaschema(name: str, document: dict[str, Any]) -> None:
    import jsonschema  # here: sfbulk imports it only for a document its cache has not seen

    jsonschema.validators.validator_for(document, default=jsonschema.Draft202012Validator).check_schema(
        document
    )


def test_a_broken_schema_is_caught() -> None:
    """The check above can fail: a schema with a wrong keyword type is refused."""
    import jsonschema

    with pytest.raises(jsonschema.SchemaError):
        jsonschema.Draft202012Validator.check_schema({"type": "object", "properties": {"x": {"type": 5}}})
