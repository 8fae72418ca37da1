"""The JSON Schemas of the bundle documents, and validation against them with file:line errors.

Validation is on the start-up path, so valid documents are recognised by a small validator that
knows just the keywords used here and decides exactly as jsonschema's Draft 2020-12 validator
(tests/unit/test_startup.py compares them); jsonschema itself is imported only to decide what the
small one cannot, and to explain a document that fails.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable, Mapping
from typing import Any

from sfbulk.errors import ConfigError, ConfigErrors
from sfbulk.yamlfile import field_path, line_of

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


# --- the small validator ----------------------------------------------------------------------


class _Undecided(Exception):
    """The fast validator cannot tell: let jsonschema decide."""


#: Python types whose equality with a ``str`` is always False (``enum``/``const`` of strings)
_PLAIN_TYPES = (type(None), bool, int, float, bytes, list, dict)


def _is_type(value: Any, name: str) -> bool:
    """jsonschema's Draft 2020-12 type checks, for the types the schemas here use."""
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "number":
        if isinstance(value, bool):
            return False
        if isinstance(value, (int, float)):
            return True
        if isinstance(value, numbers.Number):
            raise _Undecided
        return False
    raise _Undecided


def _equals_text(value: Any, options: Iterable[Any]) -> bool:
    """``value in options`` with jsonschema's notion of equality, when every option is a string."""
    options = list(options)
    if not all(type(option) is str for option in options):
        raise _Undecided
    if isinstance(value, str):
        return value in options
    if isinstance(value, _PLAIN_TYPES):
        return False
    raise _Undecided


def _conforms(value: Any, schema: Mapping[str, Any]) -> bool:
    """True when ``value`` is valid against ``schema``, exactly as Draft202012Validator decides.

    Knows only the keywords the bundle schemas use; anything else raises ``_Undecided``.
    """
    if not isinstance(schema, dict):
        raise _Undecided
    for keyword, arg in schema.items():
        if keyword == "type":
            names = arg if isinstance(arg, list) else [arg]
            if not any(_is_type(value, name) for name in names):
                return False
        elif keyword == "enum":
            if not _equals_text(value, arg):
                return False
        elif keyword == "const":
            if not _equals_text(value, [arg]):
                return False
        elif keyword == "pattern":
            if isinstance(value, str) and re.search(arg, value) is None:
                return False
        elif keyword == "minLength":
            if isinstance(value, str) and len(value) < arg:
                return False
        elif keyword == "minItems":
            if isinstance(value, list) and len(value) < arg:
                return False
        elif keyword == "minProperties":
            if isinstance(value, dict) and len(value) < arg:
                return False
        elif keyword == "required":
            if isinstance(value, dict) and any(name not in value for name in arg):
                return False
        elif keyword == "properties":
            if isinstance(value, dict) and not all(
                    _conforms(value[name], sub) for name, sub in arg.items() if name in value):
                return False
        elif keyword == "additionalProperties":
            if isinstance(value, dict):
                known = schema.get("properties", {})
                if "patternProperties" in schema:
                    raise _Undecided
                extras = [key for key in value if key not in known]
                if arg is False:
                    if extras:
                        return False
                elif arg is not True and not all(_conforms(value[key], arg) for key in extras):
                    return False
        elif keyword == "propertyNames":
            if isinstance(value, dict) and not all(_conforms(key, arg) for key in value):
                return False
        elif keyword == "items":
            if "prefixItems" in schema:
                raise _Undecided
            if isinstance(value, list) and not all(_conforms(item, arg) for item in value):
                return False
        elif keyword == "oneOf":
            if sum(1 for sub in arg if _conforms(value, sub)) != 1:
                return False
        elif keyword not in ("description", "title"):
            raise _Undecided
    return True


# --- validation -------------------------------------------------------------------------------


def is_valid(document: Any, schema: Mapping[str, Any]) -> bool:
    """Whether jsonschema's Draft 2020-12 validator finds no error; without jsonschema when it can."""
    try:
        return _conforms(document, schema)
    except _Undecided:
        import jsonschema

        return bool(jsonschema.Draft202012Validator(schema).is_valid(document))


def validate(document: Any, schema: Mapping[str, Any], display: str) -> None:
    """JSON-Schema validation; every problem becomes a ConfigError with file, line and field.

    Valid documents (the normal case) never import jsonschema: it is only needed to explain errors.
    """
    if is_valid(document, schema):
        return
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if not errors:
        return
    problems: list[ConfigError] = []
    for error in errors:
        # For oneOf failures, report the most specific sub-error when there is one.
        best = jsonschema.exceptions.best_match([error]) if error.context else error
        path = list(best.absolute_path)
        problems.append(ConfigError(best.message, file=display, line=line_of(document, path),
                                    field=field_path(path) or None))
    if len(problems) == 1:
        raise problems[0]
    raise ConfigErrors(problems)


__all__ = ["CONNECTOR_SCHEMA", "OPERATION_SCHEMA", "PARAMETER_SCHEMA", "is_valid", "validate"]
