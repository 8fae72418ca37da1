"""A structural dump of a mediator tree, so two front-ends' results can be compared for equality."""

from __future__ import annotations

import re
from typing import Any

from lxml import etree


def dump(obj: Any) -> Any:
    """Plain, comparable data for mediators, containers, expressions, values, regexes and elements."""
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    if isinstance(obj, list | tuple):
        return [dump(item) for item in obj]
    if isinstance(obj, dict):
        return {str(key): dump(value) for key, value in obj.items()}
    if isinstance(obj, re.Pattern):
        return ("regex", obj.pattern)
    if isinstance(obj, etree._Element):
        return ("xml", etree.tostring(obj, encoding="unicode"))
    name = type(obj).__name__
    if name == "Value":
        return ("Value", obj.text)
    if hasattr(obj, "evaluate") and hasattr(obj, "text") and not hasattr(obj, "mediate"):
        return ("Expression", obj.text)
    fields = {k: v for k, v in vars(obj).items() if not k.startswith("_") and k != "source_location"}
    if name in ("Proxy", "Api"):
        fields.pop("source", None)
    return (name, {key: dump(value) for key, value in sorted(fields.items())})
