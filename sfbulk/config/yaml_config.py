"""YAML front-end: read a flows file, validate it against schema.yaml, report errors by file:line:field.

The YAML shape is the data model the builder consumes directly, so once the schema accepts a file
the builder only adds the checks a schema cannot express (XPath syntax, one of value/expression...).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from sfbulk.config.document import Document, Path
from sfbulk.errors import ConfigError
from sfbulk.yamlfile import field_path

if TYPE_CHECKING:
    import jsonschema

_MEDIATOR_NAMES = (
    "property, filter, switch, log, payloadFactory, header, enrich, call, send, respond, drop, loopback, "
    "sequence, or a connector operation such as salesforcebulk.createJob"
)


@functools.cache
def schema() -> dict[str, Any]:
    """The JSON Schema of the YAML format (sfbulk/config/schema.yaml)."""
    text = resources.files("sfbulk.config").joinpath("schema.yaml").read_text(encoding="utf-8")
    # Our own file, so libyaml reads it when present (10x faster than PyYAML's pure-Python
    # reader; tests/unit/test_config_schema.py checks that both read it the same).
    data: dict[str, Any] = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return data


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    # The schema is checked against its metaschema by tests/unit/test_config_schema.py, not here:
    # check_schema took 0.28 s of every `sfbulk run`/`serve`/`validate` start. jsonschema itself is
    # imported here, only when a flows text is not already known to pass (sfbulk.config.loader).
    import jsonschema

    cls = jsonschema.validators.validator_for(schema())
    return cls(schema())


def read_yaml_file(text: str, filename: str) -> Document:
    """Parse and validate one YAML flows file; raise ``ConfigErrors``-ready list via ConfigError."""
    doc = Document.from_yaml(text, filename)
    if doc.data is None:
        doc.data = {}
    if isinstance(doc.data, dict) and isinstance(doc.data.get("namespaces"), dict):
        doc.namespaces[()] = {str(k): str(v) for k, v in doc.data["namespaces"].items()}
    return doc


def validate(doc: Document) -> list[ConfigError]:
    """Every schema violation of `doc`, in file order, as located ConfigErrors."""
    if not isinstance(doc.data, dict):
        return [
            ConfigError(
                "a flows file must be a mapping with proxies, apis, sequences, endpoints, localEntries, imports and/or namespaces",
                file=doc.filename,
                line=doc.line_of(()),
            )
        ]
    found: list[tuple[int, str, ConfigError]] = []
    for error in _validator().iter_errors(doc.data):
        path: Path = tuple(error.absolute_path)
        message, path = _describe(error, path)
        line = doc.line_of(path) or 0
        found.append(
            (
                line,
                field_path(path),
                ConfigError(message, file=doc.filename, line=line or None, field=field_path(path) or None),
            )
        )
    found.sort(key=lambda item: (item[0], item[1]))
    unique: dict[str, ConfigError] = {}
    for _, _, exc in found:
        unique.setdefault(str(exc), exc)
    return list(unique.values())


def _describe(error: jsonschema.ValidationError, path: Path) -> tuple[str, Path]:
    """A message in our words for the common cases, and the path that points at the culprit."""
    validator = error.validator
    instance = error.instance
    schema_here = error.schema if isinstance(error.schema, dict) else {}
    if validator == "required":
        missing = str(error.message).split("'")[1] if "'" in str(error.message) else str(error.message)
        return f"'{missing}' is required", path
    if validator == "additionalProperties" and isinstance(instance, dict):
        allowed = set(schema_here.get("properties", {}))
        patterns = list(schema_here.get("patternProperties", {}))
        import re

        extras = [k for k in instance if k not in allowed and not any(re.search(p, str(k)) for p in patterns)]
        first = extras[0] if extras else None
        target = (*path, str(first)) if first is not None else path
        if schema_here.get("x-mediator-keys"):
            return f"unknown mediator {first!r} (use {_MEDIATOR_NAMES})", target
        names = ", ".join(sorted(allowed))
        return f"unknown key {first!r} (allowed: {names})", target
    if validator in ("minProperties", "maxProperties") and schema_here.get("x-mediator-keys"):
        return (
            "each list item must be exactly one mediator (a mapping with one key, e.g. '- property: {...}')",
            path,
        )
    if validator == "anyOf" and isinstance(instance, str):
        return f"unknown mediator {instance!r} (use {_MEDIATOR_NAMES})", path
    if validator == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        return f"{instance!r} is not one of: {choices}", path
    if validator == "type":
        expected = error.validator_value
        expected_text = " or ".join(expected) if isinstance(expected, list) else str(expected)
        expected_text = expected_text.replace("array", "list").replace("object", "mapping")
        return f"expected a {expected_text}, got {_yaml_type(instance)}", path
    return str(error.message), path


def _yaml_type(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
