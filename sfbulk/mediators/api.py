"""REST APIs (``<api>``/``<resource>``) and how an inbound request picks one, as WSO2 MI dispatches it.

Selection, in Synapse's order (``RESTRequestHandler``, ``API.process``, the three dispatchers):

1. the API whose context (with its version: ``version-type="url"`` appends ``/<version>``,
   ``"context"`` replaces ``{version}``) is a path prefix of the request, the longest one when
   several are (Synapse takes the first that can process the request; longest is that, made
   deterministic);
2. among its resources that accept the method: url-mappings first (exact, then the longest
   ``/x/*`` prefix, then ``*.ext`` extension, as the servlet rules), then uri-templates in order,
   then a resource with neither (it takes every path);
3. none: 405 if a resource matches the path with another method (``Allow`` lists them), else 404.
   ``OPTIONS`` on a path whose resource does not declare it answers 200, ``Allow`` listing that
   resource's methods (Synapse's ``Resource.sendOptions``).

A uri-template's ``{var}`` matches one path segment, ``{+var}`` the rest including ``/``; values
are URL-decoded into ``uri.var.<var>``. A query template (``/jobs/{id}?q={q}``) needs each named
parameter in the request, in any order; extra parameters are allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, unquote_plus

from sfbulk.errors import ConfigError, SfBulkError

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.mediators.flow import SequenceOrKey

#: Methods a resource may declare (Synapse's RESTConstants).
API_METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS")
VERSION_TYPES = ("url", "context")

_VARIABLE = re.compile(r"\{([^{}]*)\}")
#: Longest path a uri-template is matched against; no real resource path comes near it.
MAX_TEMPLATE_PATH = 4096
#: The same for templates that backtrack polynomially on a path that almost matches (variables with
#: no literal between them, three or more ``{+var}``): bounded so a crafted URL costs milliseconds.
MAX_AMBIGUOUS_TEMPLATE_PATH = 256


class NoApiMatch(SfBulkError, LookupError):
    """No API or resource takes the request: ``status`` is 404 or 405 (``allow`` then lists methods)."""

    def __init__(self, status: int, message: str, allow: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.allow = allow


class UriTemplate:
    """A resource's ``uri-template``, compiled once into a matcher."""

    def __init__(self, template: str) -> None:
        if not template.startswith("/"):
            raise ConfigError(f"uri-template {template!r} must start with '/'")
        self.template = template
        path, query = _split_query(template)
        self._names: list[str] = []
        self._optional_query: list[str] = []
        self._path = re.compile(self._path_regex(path))
        adjacent = re.search(r"\}\{[^?]", path) is not None
        reserved = len(re.findall(r"\{[+#]", path))
        self._max_path = MAX_AMBIGUOUS_TEMPLATE_PATH if adjacent or reserved >= 3 else MAX_TEMPLATE_PATH
        self._query: list[tuple[str, str | None, str | None]] = []  # (param, variable, literal)
        if query:
            for pair in query.split("&"):
                name, eq, value = pair.partition("=")
                var = _VARIABLE.fullmatch(value)
                if not name or not eq:
                    raise ConfigError(
                        f"uri-template {template!r}: query part {pair!r} is not name={{variable}} or name=value"
                    )
                self._query.append((name, var.group(1).lstrip("+") if var else None, None if var else value))

    def _path_regex(self, path: str) -> str:
        out: list[str] = []
        pos = 0
        for match in _VARIABLE.finditer(path):
            out.append(re.escape(path[pos : match.start()]))
            body = match.group(1)
            if body.startswith("?"):  # RFC 6570 form {?a,b}: optional query parameters
                self._optional_query.extend(n.strip() for n in body[1:].split(",") if n.strip())
                pos = match.end()
                continue
            reserved = body[:1] in ("+", "#")
            name = body.lstrip("+#").strip()
            if not name:
                raise ConfigError(f"uri-template {self.template!r}: empty variable {{{body}}}")
            group = f"v{len(self._names)}"
            self._names.append(name)
            out.append(f"(?P<{group}>.+)" if reserved else f"(?P<{group}>[^/]+)")
            pos = match.end()
        tail = path[pos:]
        if tail.endswith("/*"):  # "/x/*": the rest of the path, as url-mapping's prefix form
            out.append(re.escape(tail[:-2]) + "(?:/.*)?")
        else:
            out.append(re.escape(tail))
        return "".join(out)

    def match(self, sub_path: str, query: dict[str, str]) -> dict[str, str] | None:
        """The ``uri.var`` values when ``sub_path`` (raw, %-encoded) and ``query`` (decoded) match."""
        if len(sub_path) > self._max_path:
            return None
        found = self._path.fullmatch(sub_path)
        if found is None and len(sub_path) > 1 and sub_path.endswith("/"):
            found = self._path.fullmatch(sub_path[:-1])
        if found is None:
            return None
        values = {name: unquote(found.group(f"v{i}")) for i, name in enumerate(self._names)}
        for param, variable, literal in self._query:
            if param not in query:
                return None
            if variable is None:
                if query[param] != literal:
                    return None
            else:
                values[variable] = query[param]
        for param in self._optional_query:
            if param in query:
                values[param] = query[param]
        return values


def _split_query(template: str) -> tuple[str, str]:
    """Split at the first ``?`` outside ``{...}`` (``{?a,b}`` stays in the path part)."""
    depth = 0
    for i, ch in enumerate(template):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "?" and depth == 0:
            return template[:i], template[i + 1 :]
    return template, ""


class UrlMapping:
    """A resource's ``url-mapping``: exact ``/x``, prefix ``/x/*`` or extension ``*.jsp`` (servlet rules)."""

    def __init__(self, mapping: str) -> None:
        self.mapping = mapping
        if mapping.startswith("*."):
            self.kind, self.value = "extension", mapping[1:]
        elif mapping == "/*" or mapping.endswith("/*"):
            self.kind, self.value = "prefix", mapping[:-2]
        elif mapping.startswith("/"):
            self.kind, self.value = "exact", mapping.rstrip("/") or "/"
        else:
            raise ConfigError(f"url-mapping {mapping!r} must be /path, /path/* or *.extension")

    def exact(self, path: str) -> bool:
        return self.kind == "exact" and (path.rstrip("/") or "/") == self.value

    def prefix_length(self, path: str) -> int:
        """Length of the matched prefix (0 = no match); ``/*`` matches everything with length 1."""
        if self.kind != "prefix":
            return 0
        if not self.value:
            return 1
        if path == self.value or path.startswith(self.value + "/"):
            return len(self.value) + 1
        return 0

    def extension(self, path: str) -> bool:
        return self.kind == "extension" and path.rsplit("/", 1)[-1].endswith(self.value)


@dataclass
class Resource:
    """One ``<resource>``: methods (empty = all), a uri-template or url-mapping (or neither), sequences."""

    methods: tuple[str, ...] = ()
    uri_template: str | None = None
    url_mapping: str | None = None
    in_sequence: SequenceOrKey = None
    out_sequence: SequenceOrKey = None
    fault_sequence: SequenceOrKey = None
    _template: UriTemplate | None = field(default=None, init=False, repr=False, compare=False)
    _mapping: UrlMapping | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.uri_template is not None and self.url_mapping is not None:
            raise ConfigError("a resource takes a uri-template or a url-mapping, not both")
        self.methods = tuple(m.upper() for m in self.methods)
        unknown = [m for m in self.methods if m not in API_METHODS]
        if unknown:
            raise ConfigError(f"unknown method(s) {', '.join(unknown)} (use {', '.join(API_METHODS)})")
        if self.uri_template is not None:
            self._template = UriTemplate(self.uri_template)
        if self.url_mapping is not None:
            self._mapping = UrlMapping(self.url_mapping)

    @property
    def label(self) -> str:
        return self.uri_template or self.url_mapping or "/*"

    def accepts(self, method: str) -> bool:
        return not self.methods or method in self.methods

    def allowed(self) -> tuple[str, ...]:
        return self.methods or API_METHODS


@dataclass
class Api:
    """One ``<api>``: ``key`` is ``name`` or ``name:v<version>`` (Synapse's key for versioned APIs)."""

    name: str
    context: str
    resources: tuple[Resource, ...] = ()
    version: str | None = None
    version_type: str | None = None
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.context.startswith("/"):
            raise ConfigError(f"API {self.name!r}: context {self.context!r} must start with '/'")
        if self.version_type is not None and self.version_type not in VERSION_TYPES:
            raise ConfigError(
                f"API {self.name!r}: version-type {self.version_type!r} is not one of {', '.join(VERSION_TYPES)}"
            )
        if self.version_type and not self.version:
            raise ConfigError(f"API {self.name!r}: version-type {self.version_type!r} needs a version")
        if "{version}" in self.context and not self.version:
            raise ConfigError(
                f"API {self.name!r}: context {self.context!r} has {{version}} but no version is set"
            )
        self.resources = tuple(self.resources)

    @property
    def key(self) -> str:
        return f"{self.name}:v{self.version}" if self.version else self.name

    @property
    def full_context(self) -> str:
        """The path prefix the API is served at, version included."""
        context = self.context.rstrip("/") or "/"
        if not self.version:
            return context
        if "{version}" in context:
            return context.replace("{version}", self.version)
        if self.version_type == "url" or self.version_type == "context":
            return (context if context != "/" else "") + "/" + self.version
        return context

    def sub_path(self, path: str) -> str | None:
        """The request path below the context (``/`` at least), or None when the context does not match."""
        context = self.full_context
        if context == "/":
            return path or "/"
        if path == context:
            return "/"
        if path.startswith(context + "/"):
            return path[len(context) :]
        return None


@dataclass
class ApiMatch:
    """The outcome of dispatch: which API and resource, and the variables the request binds."""

    api: Api
    resource: Resource
    sub_path: str  # below the context, raw; REST_SUB_REQUEST_PATH
    query: str  # raw query string, without '?'
    uri_vars: dict[str, str]
    query_params: dict[str, str]
    options_only: bool = False  # OPTIONS on a path no resource declares OPTIONS for: answer Allow
    allow: tuple[str, ...] = ()  # with options_only: the methods the path accepts

    @property
    def rest_url_postfix(self) -> str:
        return self.sub_path + (f"?{self.query}" if self.query else "")


def parse_query(query: str) -> dict[str, str]:
    """``a=1&b=x%20y`` -> decoded values; the first occurrence of a name wins."""
    params: dict[str, str] = {}
    for pair in query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        params.setdefault(unquote_plus(name), unquote_plus(value))
    return params


def select_api(apis: list[Api] | tuple[Api, ...], method: str, uri: str) -> ApiMatch:
    """Pick the API and resource for ``method uri`` (raw path + query); ``NoApiMatch`` (404/405) if none."""
    path, _, query = uri.partition("?")
    method = method.upper()
    candidates = [(api.sub_path(path), api) for api in apis]
    matching = [(sub, api) for sub, api in candidates if sub is not None]
    if not matching:
        raise NoApiMatch(404, f"No API is deployed at {path}")
    sub_path, api = max(matching, key=lambda item: len(item[1].full_context))
    assert sub_path is not None
    params = parse_query(query)
    accepting = [r for r in api.resources if r.accepts(method)]
    found = _dispatch(accepting, sub_path, params)
    if found is not None:
        resource, variables = found
        return ApiMatch(api, resource, sub_path, query, variables, params)
    by_path = [r for r in api.resources if _dispatch([r], sub_path, params) is not None]
    if not by_path:
        raise NoApiMatch(
            404, f"No resource of API {api.key!r} (context {api.full_context}) matches {sub_path}"
        )
    allow = tuple(m for m in API_METHODS if any(m in r.allowed() for r in by_path))
    if method == "OPTIONS":  # Resource.sendOptions: the elected resource's methods in Allow
        resource, variables = _dispatch(by_path, sub_path, params) or (by_path[0], {})
        return ApiMatch(
            api, resource, sub_path, query, variables, params, options_only=True, allow=resource.allowed()
        )
    raise NoApiMatch(
        405, f"{method} is not allowed on {sub_path} of API {api.key!r} (allowed: {', '.join(allow)})", allow
    )


def _dispatch(
    resources: list[Resource], sub_path: str, params: dict[str, str]
) -> tuple[Resource, dict[str, str]] | None:
    """Synapse's dispatcher order: url-mapping (exact, longest prefix, extension), uri-template, default."""
    mapped = [(r, r._mapping) for r in resources if r._mapping is not None]
    path_only = sub_path.partition("?")[0]
    for resource, mapping in mapped:
        if mapping.exact(path_only):
            return resource, {}
    best: tuple[int, Resource | None] = (0, None)
    for resource, mapping in mapped:
        length = mapping.prefix_length(path_only)
        if length > best[0]:
            best = (length, resource)
    if best[1] is not None:
        return best[1], {}
    for resource, mapping in mapped:
        if mapping.extension(path_only):
            return resource, {}
    for resource in resources:
        if resource._template is not None:
            variables = resource._template.match(path_only, params)
            if variables is not None:
                return resource, variables
    for resource in resources:
        if resource._template is None and resource._mapping is None:
            return resource, {}
    return None


__all__ = [
    "API_METHODS",
    "Api",
    "ApiMatch",
    "NoApiMatch",
    "Resource",
    "UriTemplate",
    "UrlMapping",
    "select_api",
]
