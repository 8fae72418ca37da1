"""The one Java-style ``toString`` for values that leave Python as text (headers, registry, logs, YAML scalars).

Synapse is Java: a property set to a Boolean prints ``true``/``false`` (``Boolean.toString``), an
OMElement prints its XML (``OMElement.toString``), and ``String.valueOf(null)`` is ``"null"``.
Python's ``str`` gives ``True``, ``<Element ...>`` and ``None``. Every place that turns a value
into the text Synapse would write goes through ``java_string``.

Numbers keep Python's spelling (``str``): it matches Java's for ints and for floats in
``1e-3 <= |x| < 1e7``; XPath results use ``sfbulk.expressions.values.java_double`` instead, which
follows ``Double.toString`` everywhere (``1.0E7``).

A foundation module (the connector bundle and the config layer use it): it imports neither lxml nor
the message layer.
"""

from __future__ import annotations

import sys
from typing import Any

from sfbulk.secrets import Secret


def java_string(value: Any, *, null: str = "null", reveal: bool = False) -> str:
    """``String.valueOf(value)`` as Synapse would write it.

    ``null`` is the text for None: Java writes ``"null"`` (what logs and faults show); where Synapse
    writes nothing for a null (a transport header, ``get-property``) callers pass ``null=""``.
    ``reveal`` sends a ``Secret`` in the clear (a header going on the wire, a registry value); left
    False a Secret prints masked, so logs and faults never hold it.
    """
    if value is None:
        return null
    if isinstance(value, str):
        return value if type(value) is str else str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Secret):
        return value.reveal() if reveal else str(value)
    etree = sys.modules.get("lxml.etree")  # an element can exist only once lxml is loaded
    if etree is not None and isinstance(value, etree._Element):
        from sfbulk import xmlsafe

        return xmlsafe.serialize(value)
    return str(value)


__all__ = ["java_string"]
