"""The JSON Schemas of the bundle documents, and validation against them with file:line errors.

jsonschema (Draft 2020-12) decides and explains. It is imported only when a document is checked;
the loader (sfbulk/connector/bundle/loader.py) keeps "this text was valid" in the start-up cache,
so a bundle loaded before is not checked, and jsonschema not imported, again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sfbulk.errors import ConfigError, ConfigErrors
from sfbulk.yamlfile import field_path, line_of

if TYPE_CHECKING:
    import jsonschema

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

_SCALAR = {"type": ["string", "number", "boolean"]}

CONNECTOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "version", "operations"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": IDENTIFIER},
        "version": {"type": ["string", "number"]},
        "description": {"type": "string"},
        # other names the connector answers to in configs (e.g. WSO2's salesforce_bulkapi_v2)
        "aliases": {"type": "array", "items": {"type": "string", "pattern": IDENTIFIER}},
        # where operation paths are relative to; {{ apiVersion }} is the init apiVersion
        "basePath": {"type": "string", "pattern": "^/"},
        # how the access token is sent: X-SFDC-Session (Bulk 1.0) or Authorization: Bearer (REST, Bulk 2.0)
        "session": {"enum": ["x-sfdc-session", "bearer"]},
        "operations": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": IDENTIFIER},
            "additionalProperties": {"type": "string", "minLength": 1},
        },
    },
}

PARAMETER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": IDENTIFIER},
        "required": {"type": "boolean"},
        "default": _SCALAR,
        "description": {"type": "string"},
        "allowed": {"type": "array", "minItems": 1, "items": _SCALAR},
        "strict": {"type": "boolean"},
        "type": {"enum": ["string", "integer"]},
        "minimum": {"type": "number"},
        "aliasOf": {"type": "string", "pattern": IDENTIFIER},
    },
}

OPERATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": IDENTIFIER},
        "kind": {"enum": ["http", "init"]},
        "description": {"type": "string"},
        "parameters": {"type": "array", "items": PARAMETER_SCHEMA},
        "request": {
            "type": "object",
            "required": ["method", "path"],
            "additionalProperties": False,
            "properties": {
                "method": {"enum": list(METHODS)},
                "path": {"type": "string", "pattern": "^/"},
                "query": {"type": "object", "additionalProperties": {"type": "string"}},
                "headers": {
                    "type": "object",
                    "propertyNames": {"pattern": HEADER_NAME},
                    "additionalProperties": {"type": "string"},
                },
                "contentType": {"type": "string"},
                "body": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["template"],
                            "additionalProperties": False,
                            "properties": {"template": {"type": "string", "minLength": 1}},
                        },
                        {
                            "type": "object",
                            "required": ["from"],
                            "additionalProperties": False,
                            "properties": {
                                "from": {"const": "caller"},
                                "required": {"type": "boolean"},
                                "callerContentType": {"type": "string", "pattern": IDENTIFIER},
                            },
                        },
                        {
                            # the body is a parameter's text or a file named by a parameter (streamed)
                            "type": "object",
                            "required": ["from"],
                            "additionalProperties": False,
                            "properties": {
                                "from": {"const": "input"},
                                "mode": {"type": "string", "pattern": IDENTIFIER},
                                "inline": {"type": "string", "pattern": IDENTIFIER},
                                "file": {"type": "string", "pattern": IDENTIFIER},
                            },
                        },
                    ]
                },
                "auth": {"enum": ["session", "none"]},
            },
        },
        "response": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "stream": {"type": "boolean"},
                "extract": {
                    "type": "object",
                    "propertyNames": {"pattern": IDENTIFIER},
                    "additionalProperties": {"type": "string", "minLength": 1},
                },
                # property name -> response header (Sforce-Locator), also for streamed responses
                "headers": {
                    "type": "object",
                    "propertyNames": {"pattern": IDENTIFIER},
                    "additionalProperties": {"type": "string", "pattern": HEADER_NAME},
                },
                # where a successful body goes: the message (optionally converted) or a file
                "output": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "mode": {"type": "string", "pattern": IDENTIFIER},
                        "file": {"type": "string", "pattern": IDENTIFIER},
                        "convert": {"enum": ["none", "csvToJson"]},
                        "delimiter": {"type": "string", "pattern": IDENTIFIER},
                    },
                },
            },
        },
    },
}


# --- validation -------------------------------------------------------------------------------


#: one validator per schema (by identity: the schemas are the constants above)
_VALIDATORS: dict[int, jsonschema.protocols.Validator] = {}


def _validator(schema: Mapping[str, Any]) -> jsonschema.protocols.Validator:
    validator = _VALIDATORS.get(id(schema))
    if validator is None or validator.schema is not schema:
        import jsonschema

        validator = _VALIDATORS[id(schema)] = jsonschema.Draft202012Validator(schema)
    return validator


def validate(document: Any, schema: Mapping[str, Any], display: str) -> None:
    """JSON-Schema validation; every problem becomes a ConfigError with file, line and field."""
    validator = _validator(schema)
    errors = sorted(
        validator.iter_errors(document), key=lambda e: (list(map(str, e.absolute_path)), e.message)
    )
    if not errors:
        return
    import jsonschema

    problems: list[ConfigError] = []
    for error in errors:
        # For oneOf failures, report the most specific sub-error when there is one.
        best = jsonschema.exceptions.best_match([error]) if error.context else error
        path = list(best.absolute_path)
        problems.append(
            ConfigError(
                best.message, file=display, line=line_of(document, path), field=field_path(path) or None
            )
        )
    if len(problems) == 1:
        raise problems[0]
    raise ConfigErrors(problems)


__all__ = ["CONNECTOR_SCHEMA", "OPERATION_SCHEMA", "PARAMETER_SCHEMA", "validate"]
