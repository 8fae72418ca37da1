"""The sObjects the emulator stores: field definitions, value checks and conversions.

Values arrive as text (CSV) or JSON/XML scalars; each field type has one converter that returns the
stored value or raises `FieldValueError` carrying Salesforce's status code and message.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

#: fields every object has, maintained by the emulator (never writable by clients)
SYSTEM_FIELDS = (
    "Id",
    "IsDeleted",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "CreatedById",
    "LastModifiedById",
)
TEXT_TYPES = {"string", "textarea", "email", "phone", "url", "picklist"}
FIELD_TYPES = TEXT_TYPES | {
    "boolean",
    "int",
    "double",
    "currency",
    "percent",
    "date",
    "datetime",
    "reference",
    "base64",
    "id",
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: _EMAIL over newline-joined cells; atomic groups: a failing cell must not retry earlier cells' splits
_EMAILS = re.compile(r"(?>[^@\s]+@[^@\s]+\.[^@\s]+)(?:\n(?>[^@\s]+@[^@\s]+\.[^@\s]+))*+")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})Z?$", re.ASCII)
_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?$",
    re.ASCII,
)
#: Salesforce's int fields are 32-bit
INT_RANGE = (-2_147_483_648, 2_147_483_647)


class SchemaError(Exception):
    """The schema file is malformed."""


class FieldValueError(Exception):
    """A value cannot be stored in a field; carries Salesforce's per-record status code."""

    def __init__(self, status_code: str, message: str, fields: tuple[str, ...] = ()):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.fields = fields


@dataclass(frozen=True, eq=False)  # identity hash: fields are per-schema singletons used as dict keys
class Field:
    name: str
    type: str
    length: int | None = None
    required: bool = False
    default: Any = None
    external_id: bool = False
    unique: bool = False
    id_lookup: bool = False
    reference_to: str | None = None
    relationship_name: str | None = None
    values: tuple[str, ...] = ()
    restricted: bool = False
    #: not createable/updateable by clients (formula, roll-up, compound and system fields)
    read_only: bool = False
    #: a compound field (Contact.Name): its value is these fields' non-empty values joined by a space
    compound_of: tuple[str, ...] = ()
    #: a formula field (Opportunity.ExpectedRevenue): arithmetic over the object's number fields, as tokens
    #: (field names, numbers, ``+ - * / ( )``); computed by queries like a compound field
    formula: tuple[str, ...] = ()

    @property
    def computed(self) -> bool:
        """Not stored: queries compute the value (compound and formula fields)."""
        return bool(self.compound_of or self.formula)

    @property
    def column(self) -> str:
        return '"' + self.name + '"'

    @property
    def upsert_key(self) -> bool:
        return self.external_id or self.id_lookup or self.name == "Id"

    @property
    def writable(self) -> bool:
        """Whether a batch may set it (Salesforce: createable/updateable); Id only names the record."""
        return not (self.read_only or (self.name in SYSTEM_FIELDS and self.name != "Id"))


@dataclass
class SObject:
    name: str
    key_prefix: str
    fields: dict[str, Field] = field(default_factory=dict)  # by name, creation order
    _by_lower: dict[str, Field] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return '"sobj_' + self.name + '"'

    def field(self, name: str) -> Field | None:
        """Case-insensitive lookup, as Salesforce field names are."""
        return self._by_lower.get(name.lower())

    def add(self, f: Field) -> None:
        self.fields[f.name] = f
        self._by_lower[f.name.lower()] = f

    @property
    def data_fields(self) -> list[Field]:
        return [f for f in self.fields.values() if f.name not in SYSTEM_FIELDS]

    def relationship(self, name: str) -> Field | None:
        lower = name.lower()
        for f in self.fields.values():
            if f.relationship_name and f.relationship_name.lower() == lower:
                return f
        return None


def _system_fields() -> list[Field]:
    return [
        Field("Id", "id", external_id=False),
        Field("IsDeleted", "boolean"),
        Field("CreatedDate", "datetime"),
        Field("LastModifiedDate", "datetime"),
        Field("SystemModstamp", "datetime"),
        Field("CreatedById", "reference", reference_to="User"),
        Field("LastModifiedById", "reference", reference_to="User"),
    ]


class Schema:
    """All sObjects, looked up case-insensitively by name or by key prefix."""

    def __init__(self, objects: dict[str, SObject]):
        self.objects = objects
        self._by_lower = {name.lower(): obj for name, obj in objects.items()}
        self._by_prefix = {obj.key_prefix: obj for obj in objects.values()}

    def get(self, name: str) -> SObject | None:
        return self._by_lower.get(name.lower())

    def by_prefix(self, prefix: str) -> SObject | None:
        return self._by_prefix.get(prefix)

    @classmethod
    def load(cls, extra: str | os.PathLike[str] | None = None) -> Schema:
        """The built-in schema, merged with an optional user schema file."""
        text = resources.files("sfbulk.emulator").joinpath("schema.yaml").read_text(encoding="utf-8")
        # The built-in file is ours, so libyaml reads it when present (a tenth of PyYAML's pure-Python
        # time at every emulator start; tests/emulator/test_readonly_fields.py checks both read it the same).
        docs = [
            ("built-in schema.yaml", yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
        ]
        if extra is not None:
            path = Path(extra)
            try:
                docs.append((str(path), yaml.safe_load(path.read_text(encoding="utf-8"))))
            except (OSError, yaml.YAMLError) as exc:
                raise SchemaError(f"cannot read schema file {path}: {exc}") from exc
        objects: dict[str, SObject] = {}
        for source, doc in docs:
            if not isinstance(doc, dict) or not isinstance(doc.get("objects"), dict):
                raise SchemaError(f"{source}: expected a mapping with an 'objects' mapping")
            for name, spec in doc["objects"].items():
                _merge_object(objects, source, str(name), spec)
        prefixes: dict[str, str] = {}
        for obj in objects.values():
            if obj.key_prefix in prefixes:
                raise SchemaError(
                    f"objects {prefixes[obj.key_prefix]} and {obj.name} share key prefix {obj.key_prefix}"
                )
            prefixes[obj.key_prefix] = obj.name
        return cls(objects)


def _merge_object(objects: dict[str, SObject], source: str, name: str, spec: Any) -> None:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise SchemaError(f"{source}: invalid object name {name!r}")
    if not isinstance(spec, dict):
        raise SchemaError(f"{source}: object {name} must be a mapping")
    obj = objects.get(name)
    if obj is None:
        prefix = str(spec.get("keyPrefix", ""))
        if not re.fullmatch(r"[0-9A-Za-z]{3}", prefix):
            raise SchemaError(f"{source}: object {name} needs a 3-character keyPrefix")
        obj = SObject(name, prefix)
        for f in _system_fields():
            obj.add(f)
        objects[name] = obj
    for fname, fspec in (spec.get("fields") or {}).items():
        fspec = fspec or {}
        ftype = fspec.get("type", "string")
        if ftype not in FIELD_TYPES or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", str(fname)):
            raise SchemaError(f"{source}: {name}.{fname}: unknown type {ftype!r} or invalid field name")
        compound = tuple(str(part) for part in fspec.get("compoundOf") or ())
        if compound:
            parts = [obj.field(part) for part in compound]
            if ftype not in TEXT_TYPES or any(
                p is None or p.type not in TEXT_TYPES or p.computed for p in parts
            ):
                raise SchemaError(
                    f"{source}: {name}.{fname}: compoundOf needs a text field made of text fields "
                    f"declared before it, got {list(compound)}"
                )
            compound = tuple(p.name for p in parts if p is not None)
        formula = _formula(obj, source, f"{name}.{fname}", ftype, fspec.get("formula"))
        if (compound or formula) and any(
            fspec.get(key) for key in ("externalId", "unique", "idLookup", "required", "default")
        ):
            raise SchemaError(
                f"{source}: {name}.{fname}: a compoundOf or formula field is computed: it cannot be "
                f"externalId, unique, idLookup, required or have a default"
            )
        length = fspec.get("length")
        if ftype in TEXT_TYPES and length is None:
            length = 255
        obj.add(
            Field(
                name=str(fname),
                type=ftype,
                length=int(length) if length is not None else None,
                required=bool(fspec.get("required", False)),
                default=fspec.get("default"),
                external_id=bool(fspec.get("externalId", False)),
                unique=bool(fspec.get("unique", False)),
                id_lookup=bool(fspec.get("idLookup", False)),
                reference_to=fspec.get("referenceTo"),
                relationship_name=fspec.get("relationshipName"),
                values=tuple(str(v) for v in fspec.get("values", ())),
                restricted=bool(fspec.get("restricted", False)),
                read_only=bool(fspec.get("readOnly", False)) or bool(compound) or bool(formula),
                compound_of=compound,
                formula=formula,
            )
        )


_FORMULA_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|([A-Za-z][A-Za-z0-9_]*)|([-+*/()]))", re.ASCII)
NUMBER_TYPES = {"int", "double", "currency", "percent"}


def _formula(obj: SObject, source: str, where: str, ftype: str, text: Any) -> tuple[str, ...]:
    """A formula's tokens, checked: arithmetic (``+ - * / ( )``, numbers) over number fields declared before."""
    if text is None:
        return ()
    problem = f"{source}: {where}: formula {text!r}"
    if ftype not in NUMBER_TYPES:
        raise SchemaError(f"{problem}: a formula field must be a number type, not {ftype}")
    text = str(text)
    tokens: list[str] = []
    pos = 0
    while pos < len(text.rstrip()):
        m = _FORMULA_TOKEN.match(text, pos)
        if m is None:
            raise SchemaError(f"{problem}: unexpected text at {text[pos : pos + 10]!r}")
        number, name, op = m.groups()
        if name is not None:
            f = obj.field(name)
            if f is None or f.type not in NUMBER_TYPES or f.computed:
                raise SchemaError(f"{problem}: {name} is not a stored number field declared before it")
            tokens.append(f.name)
        else:
            tokens.append(number or op)
        pos = m.end()
    # grammar: expr := term (('+'|'-') term)*; term := factor (('*'|'/') factor)*; factor := number|name|'(' expr ')'|'-' factor
    at = 0

    def factor() -> None:
        nonlocal at
        tok = tokens[at] if at < len(tokens) else ""
        at += 1
        if tok == "(":
            expr()
            if at >= len(tokens) or tokens[at] != ")":
                raise SchemaError(f"{problem}: missing ')'")
            at += 1
        elif tok == "-":
            factor()
        elif not tok or tok in "+-*/()":
            raise SchemaError(f"{problem}: expected a number or a field, got {tok or 'the end'!r}")

    def expr() -> None:
        nonlocal at
        factor()
        while at < len(tokens) and tokens[at] in ("+", "-", "*", "/"):
            at += 1
            factor()

    expr()
    if at != len(tokens):
        raise SchemaError(f"{problem}: unexpected {tokens[at]!r}")
    return tuple(tokens)


# ---------------------------------------------------------------------------------------------
# value conversion (input text -> stored value)


def now_iso() -> str:
    """Current UTC time in the stored form, e.g. 2024-11-21T09:28:59.000Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _type_error(f: Field, raw: object) -> FieldValueError:
    return FieldValueError(
        "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{f.name}: value not of required type: {raw}", (f.name,)
    )


def _parse_date(f: Field, raw: str) -> str:
    m = _DATE.match(raw)
    if m is None:
        m2 = _DATETIME.match(raw)
        if m2 is None:
            raise _type_error(f, raw)
        return _parse_datetime(f, raw)[:10]
    try:
        datetime(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise _type_error(f, raw) from None
    return f"{m[1]}-{m[2]}-{m[3]}"


def _parse_datetime(f: Field, raw: str) -> str:
    m = _DATETIME.match(raw)
    if m is None:
        if _DATE.match(raw):
            return _parse_date(f, raw) + "T00:00:00.000Z"
        raise _type_error(f, raw)
    tz = m[8] or "Z"
    try:
        dt = datetime(
            int(m[1]),
            int(m[2]),
            int(m[3]),
            int(m[4]),
            int(m[5]),
            int(m[6] or 0),
            int((m[7] or "0")[:6].ljust(6, "0")),
        )
        if tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            digits = tz[1:].replace(":", "")
            offset = sign * (int(digits[:2]) * 60 + int(digits[2:]))
            from datetime import timedelta

            dt = dt - timedelta(minutes=offset)
    except (ValueError, OverflowError):  # OverflowError: 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise _type_error(f, raw) from None
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def make_converter(f: Field) -> Callable[[Any], Any]:
    """A function turning one non-empty input value into the stored value (or raising FieldValueError)."""
    name = f.name
    if f.type in TEXT_TYPES:
        limit = f.length or 255
        is_email = f.type == "email"
        restricted = set(f.values) if (f.type == "picklist" and f.restricted) else None

        def text(raw: Any) -> Any:
            value = raw if isinstance(raw, str) else _scalar_text(raw)
            if len(value) > limit:
                raise FieldValueError(
                    "STRING_TOO_LONG",
                    f"{name}: data value too large: {value[:100]} (max length={limit})",
                    (name,),
                )
            if is_email and not _EMAIL.match(value):
                raise FieldValueError(
                    "INVALID_EMAIL_ADDRESS", f"{name}: invalid email address: {value}", (name,)
                )
            if restricted is not None and value not in restricted:
                raise FieldValueError(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{name}: bad value for restricted picklist field: {value}",
                    (name,),
                )
            return value

        return text
    if f.type == "boolean":

        def boolean(raw: Any) -> Any:
            if isinstance(raw, bool):
                return int(raw)
            low = str(raw).strip().lower()
            if low in ("true", "1", "yes"):
                return 1
            if low in ("false", "0", "no"):
                return 0
            raise _type_error(f, raw)

        return boolean
    if f.type == "int":

        def integer(raw: Any) -> Any:
            if isinstance(raw, bool):
                raise _type_error(f, raw)
            try:
                number = float(raw)
                if number != int(number):
                    raise ValueError
                value = int(number)
            except (TypeError, ValueError, OverflowError):
                raise _type_error(f, raw) from None
            if not INT_RANGE[0] <= value <= INT_RANGE[1]:
                raise FieldValueError(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"{name}: value outside of valid range on numeric field: {raw}",
                    (name,),
                )
            return value

        return integer
    if f.type in ("double", "currency", "percent"):

        def number(raw: Any) -> Any:
            if isinstance(raw, bool):
                raise _type_error(f, raw)
            try:
                value = float(raw)
            except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON integer of 400 digits
                raise _type_error(f, raw) from None
            if value != value or value in (float("inf"), float("-inf")):
                raise _type_error(f, raw)
            return value

        return number
    if f.type == "date":
        return lambda raw: _parse_date(f, str(raw).strip())
    if f.type == "datetime":
        return lambda raw: _parse_datetime(f, str(raw).strip())
    if f.type == "base64":

        def b64(raw: Any) -> Any:
            if isinstance(raw, bytes):
                return base64.b64encode(raw).decode("ascii")
            try:
                base64.b64decode(str(raw), validate=True)
            except (binascii.Error, ValueError):
                raise _type_error(f, "(binary)") from None
            return str(raw)

        return b64
    # reference / id: checked by the DML layer, which knows the other objects
    return lambda raw: str(raw).strip()


def make_column_check(f: Field) -> Callable[[Sequence[str]], bool] | None:
    """For a text field, a test of a whole column of ``str`` cells: True only when the field's converter
    would return every cell unchanged (no per-value call needed). None for other field types.

    A False answer says nothing about single cells: convert them one by one to find out.
    """
    if f.type not in TEXT_TYPES:
        return None
    limit = f.length or 255
    is_email = f.type == "email"
    restricted = frozenset(f.values) if (f.type == "picklist" and f.restricted) else None

    def check(cells: Sequence[str]) -> bool:
        if max(map(len, cells), default=0) > limit:
            return False
        if is_email and not _all_emails(cells):
            return False
        return restricted is None or restricted.issuperset(cells)

    return check


def _all_emails(cells: Sequence[str]) -> bool:
    """True only when ``_EMAIL`` matches every cell; one regex pass over the cells joined by newlines.

    No cell may hold a newline of its own (``$`` also matches before a final one, which this joined
    form cannot tell): then the joins are the only separators and each cell must match in full.
    """
    joined = "\n".join(cells)
    return joined.count("\n") == len(cells) - 1 and _EMAILS.fullmatch(joined) is not None


def _scalar_text(raw: Any) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw)
