"""Parse the SOQL subset the Bulk API emulator serves and translate it to parameterised SQLite SQL.

``lexer`` cuts the text into tokens, ``parser`` builds a ``SoqlQuery`` (``nodes``: the AST, plain data),
``compiler.to_sql`` turns that query into one SQLite SELECT; imports run only in that direction.

Salesforce semantics kept on purpose:

* keywords are case-insensitive; field and object names are kept as written (``column()`` resolves
  them case-insensitively);
* ``AND`` and ``OR`` may not be mixed without parentheses and ``NOT`` may only start a condition
  (``a AND NOT b`` is ``unexpected token: 'NOT'``, as on Salesforce);
* two-valued logic: ``null`` is a value, so ``Name != 'x'`` and ``NOT (Name = 'x')`` include rows whose
  ``Name`` is null, while ``<``, ``>``, ``LIKE`` and ``IN`` never match a null;
* ``=``, ``!=``, ``<``, ``>``, ``IN`` and ``LIKE`` on strings ignore case (SQLite ``NOCASE``; ASCII only),
  except on ``Id`` where the binary order is what PK chunking ranges rely on;
* ``ORDER BY`` defaults to NULLS FIRST for ASC and NULLS LAST for DESC.

Every literal reaches SQLite as a bound parameter; only SQL produced by this package and the caller's
``table``/``column()``/``extra_where`` fragments are ever interpolated.
"""

from __future__ import annotations

from .compiler import to_sql
from .nodes import And, Comparison, InList, Literal, Not, Or, SoqlError, SoqlQuery
from .parser import parse_soql

__all__ = [
    "And",
    "Comparison",
    "InList",
    "Literal",
    "Not",
    "Or",
    "SoqlError",
    "SoqlQuery",
    "parse_soql",
    "to_sql",
]
