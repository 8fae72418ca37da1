"""Synapse XML front-end: read proxy, api, sequence, endpoint, localEntry, import and definitions files as Synapse does.

The XML is translated, element by element, into the same plain data the YAML format holds
(``Document``), keeping each element's line, its in-scope namespace prefixes (for XPath) and an XML
label for error messages; ``build.py`` then makes the mediators. Synapse's reading rules are kept
(synapse.md §2-3): text between mediators is ignored (the seed's stray ``it>``), comments and
``<description>`` are skipped, an unknown element is "Unknown mediator referenced by configuration
element : {ns}name", ``<lib.op>`` is a connector operation whose children are parameters, and
attribute precedence (property: value > inline element > expression) is applied here.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from lxml import etree

from sfbulk import xmlsafe
from sfbulk.config.document import Document, Path
from sfbulk.errors import ConfigError, PayloadError

log = logging.getLogger("sfbulk.config")

SYNAPSE_NS = "http://ws.apache.org/ns/synapse"
_S = "{" + SYNAPSE_NS + "}"

#: children of <proxy> that Synapse understands but that mean nothing to this engine.
_IGNORED_PROXY_CHILDREN = {"parameter", "publishWSDL", "policy", "enableAddressing", "enableSec", "enableRM"}

#: Synapse artifacts sfbulk does not run, with what they are (for the error message).
_UNSUPPORTED_ARTIFACTS = {
    f"{_S}template": "sequence/endpoint templates",
    f"{_S}messageStore": "message stores",
    f"{_S}messageProcessor": "message processors",
    f"{_S}task": "scheduled tasks",
    f"{_S}inboundEndpoint": "inbound endpoints",
    f"{_S}priorityExecutor": "priority executors",
    f"{_S}eventSource": "event sources",
    f"{_S}executor": "priority executors",
}

_CONNECTOR_OP = re.compile(r"^[A-Za-z_][\w-]*\.[A-Za-z_][\w.-]*$")


class NotSynapseConfig(ConfigError):
    """The XML file is not a Synapse config (e.g. a sample request body lying in a config folder)."""


def read_synapse_file(data: bytes, filename: str) -> tuple[Document, list[ConfigError]]:
    """Parse one Synapse XML file into a ``Document`` (proxies, sequences, localEntries).

    Problems in single elements are returned (the broken element is left out of the document, so
    the builder can still check the rest); an unreadable file raises.
    """
    try:
        root = xmlsafe.parse(data, what=f"config file {filename}")
    except PayloadError as exc:
        match = re.search(r"\(line (\d+)", exc.message)
        raise ConfigError(exc.message, file=filename, line=int(match.group(1)) if match else None) from None
    reader = _Reader(filename)
    reader.top_level(root)
    return reader.doc, reader.errors


class _Reader:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.doc = Document(data={}, filename=filename)
        self.errors: list[ConfigError] = []

    # --- helpers ---------------------------------------------------------------------------

    def error(self, message: str, el: etree._Element, field: str | None = None) -> ConfigError:
        return ConfigError(message, file=self.filename, line=el.sourceline, field=field)

    def mark(self, path: Path, el: etree._Element, label: str | None = None) -> None:
        """Record where `path` came from: line, XPath namespaces in scope, and its XML name."""
        self.doc.lines[path] = el.sourceline or 0
        self.doc.namespaces[path] = {
            k: v for k, v in el.nsmap.items() if k
        }  # unprefixed XPath names: no namespace
        self.doc.labels[path] = label or _local(el)

    def attr(
        self, el: etree._Element, path: Path, out: dict[str, Any], name: str, key: str | None = None
    ) -> None:
        """Copy attribute `name` (if present) to out[key], remembering its line and label."""
        value = el.get(name)
        if value is None:
            return
        key = key or name
        out[key] = value
        self.doc.lines[(*path, key)] = el.sourceline or 0
        self.doc.labels[(*path, key)] = f"{_local(el)}@{name}"

    def top_level(self, root: etree._Element) -> None:
        if root.tag in (f"{_S}definitions",):
            for child in _element_children(root):
                self.definition(child)
        elif isinstance(root.tag, str) and etree.QName(root).namespace != SYNAPSE_NS:
            raise NotSynapseConfig(
                f"<{_local(root)}> is not a Synapse configuration element: the root element must be in the "
                f'namespace {SYNAPSE_NS} (add xmlns="{SYNAPSE_NS}")',
                file=self.filename,
                line=root.sourceline,
            )
        else:
            self.definition(root)

    def definition(self, el: etree._Element) -> None:
        name = _local(el)
        try:
            if el.tag == f"{_S}proxy":
                self.proxy(el)
            elif el.tag == f"{_S}sequence":
                self.named_sequence(el)
            elif el.tag == f"{_S}localEntry":
                self.local_entry(el)
            elif el.tag == f"{_S}api":
                self.api(el)
            elif el.tag == f"{_S}endpoint":
                self.named_endpoint(el)
            elif el.tag == f"{_S}import":
                self.connector_import(el)
            elif el.tag in (f"{_S}description", f"{_S}registry"):
                log.debug("%s:%s: <%s> ignored", self.filename, el.sourceline, name)
            elif el.tag in _UNSUPPORTED_ARTIFACTS:
                raise self.error(
                    f"<{name}> artifacts ({_UNSUPPORTED_ARTIFACTS[el.tag]}) are not supported by sfbulk; "
                    "supported: proxy, api, sequence, endpoint, localEntry, import",
                    el,
                )
            else:
                raise self.error(
                    f"<{name}> is not supported at the top level "
                    "(expected proxy, api, sequence, endpoint, localEntry, import or definitions)",
                    el,
                )
        except ConfigError as exc:
            self.errors.append(exc)

    def named(self, el: etree._Element, attr: str, what: str) -> str:
        value = (el.get(attr) or "").strip()
        if not value:
            raise self.error(f"a {what} needs a '{attr}' attribute", el, f"{_local(el)}@{attr}")
        return value

    def add(self, section: str, name: str, value: Any, el: etree._Element) -> Path:
        table = self.doc.data.setdefault(section, {})
        if name in table:
            raise self.error(
                f"{section[:-1] if section != 'localEntries' else 'localEntry'} {name!r} is defined twice in this file",
                el,
            )
        table[name] = value
        path: Path = (section, name)
        self.mark(path, el, f"{_local(el)}[{name}]")
        return path

    # --- definitions -----------------------------------------------------------------------

    def proxy(self, el: etree._Element) -> None:
        name = self.named(el, "name", "proxy")
        data: dict[str, Any] = {}
        path = self.add("proxies", name, data, el)
        transports = el.get("transports")
        if transports is not None:
            data["transports"] = [t for t in re.split(r"[\s,]+", transports) if t]
        start = el.get("startOnLoad")
        if start is not None:
            data["startOnLoad"] = start.strip().lower() == "true"  # Boolean.valueOf
        targets = []
        for child in _element_children(el):
            local = _local(child)
            if child.tag == f"{_S}target":
                targets.append(child)
            elif child.tag == f"{_S}description":
                data["description"] = (child.text or "").strip()
            elif etree.QName(child).namespace == SYNAPSE_NS and local in _IGNORED_PROXY_CHILDREN:
                log.warning(
                    "%s:%s: proxy %s: <%s> is ignored by sfbulk", self.filename, child.sourceline, name, local
                )
            else:
                self.errors.append(self.error(f"proxy {name!r}: unexpected element <{local}>", child))
        if not targets:
            raise self.error(f"proxy {name!r} has no <target>", el)
        if len(targets) > 1:
            raise self.error(f"proxy {name!r} has more than one <target>", targets[1])
        self.target(targets[0], data, path)

    def target(self, el: etree._Element, data: dict[str, Any], path: Path) -> None:
        inline: dict[str, etree._Element] = {}
        for child in _element_children(el):
            local = _local(child)
            if etree.QName(child).namespace == SYNAPSE_NS and local in (
                "inSequence",
                "outSequence",
                "faultSequence",
                "endpoint",
            ):
                inline.setdefault(local, child)
            elif child.tag == f"{_S}description":
                continue
            else:
                self.errors.append(self.error(f"<target>: unexpected element <{local}>", child))
        for slot in ("inSequence", "outSequence", "faultSequence"):
            key = el.get(slot)
            slot_path = (*path, slot)
            if key:  # the key attribute wins over an inline sequence (ProxyServiceFactory)
                data[slot] = key
                self.doc.lines[slot_path] = el.sourceline or 0
                self.doc.labels[slot_path] = f"target@{slot}"
            elif slot in inline:
                data[slot] = self.sequence_body(inline[slot], slot_path)
        if el.get("endpoint"):  # a named endpoint, resolved when the message is sent
            data["endpoint"] = {"key": el.get("endpoint")}
            self.doc.lines[(*path, "endpoint")] = el.sourceline or 0
            self.doc.labels[(*path, "endpoint")] = "target@endpoint"
        elif "endpoint" in inline:
            data["endpoint"] = self.endpoint(inline["endpoint"], (*path, "endpoint"))

    def sequence_body(self, el: etree._Element, path: Path) -> dict[str, Any]:
        """An inline or named sequence element -> {onError?, mediators}."""
        self.mark(path, el)
        body: dict[str, Any] = {}
        self.attr(el, path, body, "onError")
        body["mediators"] = self.mediators(el, (*path, "mediators"))
        return body

    def named_sequence(self, el: etree._Element) -> None:
        name = self.named(el, "name", "named sequence")
        body: dict[str, Any] = {}
        path = self.add("sequences", name, body, el)
        self.attr(el, path, body, "onError")
        body["mediators"] = self.mediators(el, (*path, "mediators"))

    def local_entry(self, el: etree._Element) -> None:
        key = self.named(el, "key", "localEntry")
        if el.get("src"):
            raise self.error("localEntry 'src' is not supported: put the value inline", el, "localEntry@src")
        children = _element_children(el)
        value: Any
        if children:
            value = {"xml": xmlsafe.serialize(_clean_copy(children[0]))}
        else:
            value = (el.text or "").strip()
        self.add("localEntries", key, value, el)
        # A local entry holding a <sequence> or an <endpoint> also defines one under its key: Synapse
        # resolves <sequence key>/<endpoint key> through the local registry.
        if children and children[0].tag == f"{_S}sequence":
            body = self.sequence_body(children[0], ("sequences", key))
            self.doc.data.setdefault("sequences", {})[key] = body
            self.doc.labels[("sequences", key)] = f"localEntry[{key}]/sequence"
        elif children and children[0].tag == f"{_S}endpoint":
            self.doc.data.setdefault("endpoints", {})[key] = self.endpoint(children[0], ("endpoints", key))
            self.doc.labels[("endpoints", key)] = f"localEntry[{key}]/endpoint"

    def named_endpoint(self, el: etree._Element) -> None:
        name = self.named(el, "name", "named endpoint")
        if el.get("key"):
            raise self.error(
                "a named <endpoint> defines an endpoint: give 'name', not 'key'", el, "endpoint@key"
            )
        table = self.doc.data.setdefault("endpoints", {})
        if name in table:
            raise self.error(f"endpoint {name!r} is defined twice in this file", el)
        path: Path = ("endpoints", name)
        table[name] = self.endpoint(el, path)
        self.doc.labels[path] = f"endpoint[{name}]"

    def connector_import(self, el: etree._Element) -> None:
        """``<import name package status>``: enables connector ``name`` (synapse.md §2.4 step 6)."""
        name = self.named(el, "name", "connector <import>")
        spec: dict[str, Any] = {}
        path = self.add("imports", name, spec, el)
        self.attr(el, path, spec, "package")
        status = el.get("status")
        if status is not None:
            spec["status"] = status.strip().lower()
            self.doc.lines[(*path, "status")] = el.sourceline or 0
            self.doc.labels[(*path, "status")] = "import@status"

    def api(self, el: etree._Element) -> None:
        """``<api name context [version version-type]>`` with ``<resource>`` children."""
        name = self.named(el, "name", "REST API (<api>)")
        context = self.named(el, "context", f"REST API {name!r}")
        version = (el.get("version") or "").strip()
        data: dict[str, Any] = {}
        key = f"{name}:v{version}" if version else name
        path = self.add("apis", key, data, el)
        if key != name:
            data["name"] = name
        self.attr(el, path, data, "context")
        data["context"] = context
        if version:
            self.attr(el, path, data, "version")
            data["version"] = version
        self.attr(el, path, data, "version-type")
        for restriction in ("hostname", "port"):
            if el.get(restriction):
                log.warning(
                    "%s:%s: API %s: %s=%r is ignored: sfbulk serves the API on every host and port it listens on",
                    self.filename,
                    el.sourceline,
                    name,
                    restriction,
                    el.get(restriction),
                )
        resources: list[dict[str, Any]] = []
        for child in _element_children(el):
            local = _local(child)
            if child.tag == f"{_S}resource":
                resource_path = (*path, "resources", len(resources))
                try:
                    resources.append(self.resource(child, resource_path))
                except ConfigError as exc:
                    self.errors.append(exc)
                    resources.append({})  # keeps the later indexes (and their lines) right
            elif child.tag == f"{_S}description":
                data["description"] = (child.text or "").strip()
            elif child.tag == f"{_S}handlers":
                log.warning(
                    "%s:%s: API %s: <handlers> are ignored by sfbulk", self.filename, child.sourceline, name
                )
            else:
                self.errors.append(self.error(f"API {name!r}: unexpected element <{local}>", child))
        if not resources:
            raise self.error(f"API {name!r} has no <resource>", el)
        data["resources"] = resources

    def resource(self, el: etree._Element, path: Path) -> dict[str, Any]:
        self.mark(path, el, "resource")
        data: dict[str, Any] = {}
        methods = el.get("methods")
        if methods is not None:
            data["methods"] = [m for m in re.split(r"[\s,]+", methods) if m]
            self.doc.lines[(*path, "methods")] = el.sourceline or 0
            self.doc.labels[(*path, "methods")] = "resource@methods"
        self.attr(el, path, data, "uri-template")
        self.attr(el, path, data, "url-mapping")
        inline: dict[str, etree._Element] = {}
        for child in _element_children(el):
            local = _local(child)
            if etree.QName(child).namespace == SYNAPSE_NS and local in (
                "inSequence",
                "outSequence",
                "faultSequence",
            ):
                inline.setdefault(local, child)
            elif child.tag != f"{_S}description":
                self.errors.append(self.error(f"<resource>: unexpected element <{local}>", child))
        for slot in ("inSequence", "outSequence", "faultSequence"):
            key = el.get(slot)
            slot_path = (*path, slot)
            if key:  # the key attribute wins over an inline sequence, as for proxies
                data[slot] = key
                self.doc.lines[slot_path] = el.sourceline or 0
                self.doc.labels[slot_path] = f"resource@{slot}"
            elif slot in inline and (_element_children(inline[slot]) or inline[slot].get("onError")):
                data[slot] = self.sequence_body(inline[slot], slot_path)
        return data

    # --- mediator lists --------------------------------------------------------------------

    def mediators(self, parent: etree._Element, path: Path, skip: tuple[str, ...] = ()) -> list[Any]:
        """Every element child is a mediator; text, comments, PIs and <description> are skipped."""
        self.mark(path, parent)
        items: list[Any] = []
        for child in _element_children(parent):
            if child.tag == f"{_S}description" or child.tag in skip:
                continue
            item_path = (*path, len(items))
            try:
                item = self.mediator(child, item_path)
            except ConfigError as exc:
                self.errors.append(exc)
                item = None
            if item is not None:
                items.append(item)
        return items

    def mediator(self, el: etree._Element, path: Path) -> dict[str, Any] | None:
        qname = etree.QName(el)
        local = qname.localname
        handler = _MEDIATORS.get(local) if qname.namespace == SYNAPSE_NS else None
        if handler is None:
            if qname.namespace == SYNAPSE_NS and "." in local and _CONNECTOR_OP.match(local):
                handler = _Reader.connector_operation
                key = local
            else:
                raise self.error(
                    f"Unknown mediator referenced by configuration element : {{{qname.namespace or ''}}}{local}",
                    el,
                )
        else:
            key = local
        self.mark(path, el)
        body_path = (*path, key)
        self.mark(body_path, el)
        body = handler(self, el, body_path)
        return {key: body}

    def branch(self, el: etree._Element, path: Path) -> Any:
        """<then>/<else>: a sequence key or a mediator list."""
        key = el.get("sequence")
        if key:
            self.doc.lines[path] = el.sourceline or 0
            self.doc.labels[path] = f"{_local(el)}@sequence"
            return key
        return self.mediators(el, path)

    # --- one method per mediator element ---------------------------------------------------

    def property(self, el: etree._Element, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("name", "scope", "type", "action", "pattern"):
            self.attr(el, path, out, name)
        # precedence: value > first child element > expression (PropertyMediatorFactory)
        children = _element_children(el)
        if el.get("value") is not None:
            self.attr(el, path, out, "value")
        elif children:
            out["xml"] = xmlsafe.serialize(_clean_copy(children[0]))
            self.mark((*path, "xml"), children[0], "property (inline element)")
        elif el.get("expression") is not None:
            self.attr(el, path, out, "expression")
        group = el.get("group")
        if group is not None:
            out["group"] = self.integer(group, el, "property@group")
            self.doc.lines[(*path, "group")] = el.sourceline or 0
        if "name" not in out:
            raise self.error("property: the 'name' attribute is required", el, "property@name")
        return out

    def integer(self, text: str, el: etree._Element, field: str) -> int:
        try:
            return int(text.strip())
        except ValueError:
            raise self.error(f"{text!r} is not a whole number", el, field) from None

    def filter(self, el: etree._Element, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if el.get("xpath") is not None:  # xpath wins; source/regex are then ignored
            self.attr(el, path, out, "xpath")
        elif el.get("source") is not None and el.get("regex") is not None:
            self.attr(el, path, out, "source")
            self.attr(el, path, out, "regex")
        else:
            raise self.error("filter: give either an 'xpath' attribute or both 'source' and 'regex'", el)
        then_el = el.find(f"{_S}then")
        if then_el is not None:
            out["then"] = self.branch(then_el, (*path, "then"))
            else_el = el.find(f"{_S}else")
            if else_el is not None:
                out["else"] = self.branch(else_el, (*path, "else"))
            for child in _element_children(el):
                if child.tag not in (f"{_S}then", f"{_S}else", f"{_S}description"):
                    self.errors.append(
                        self.error(f"filter: <{_local(child)}> must be inside <then> or <else>", child)
                    )
        else:
            out["then"] = self.mediators(el, (*path, "then"))
        return out

    def switch(self, el: etree._Element, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.attr(el, path, out, "source")
        if "source" not in out:
            raise self.error("switch: the 'source' attribute is required", el, "switch@source")
        cases: list[dict[str, Any]] = []
        default_seen = False
        for child in _element_children(el):
            if child.tag == f"{_S}case":
                case_path = (*path, "cases", len(cases))
                self.mark(case_path, child)
                case: dict[str, Any] = {}
                self.attr(child, case_path, case, "regex")
                if "regex" not in case:
                    self.errors.append(
                        self.error("switch: <case> needs a 'regex' attribute", child, "case@regex")
                    )
                    continue
                case["mediators"] = self.mediators(child, (*case_path, "mediators"))
                cases.append(case)
            elif child.tag == f"{_S}default":
                if not default_seen:  # only the first <default> counts (SwitchMediatorFactory)
                    out["default"] = self.mediators(child, (*path, "default"))
                    default_seen = True
            elif child.tag != f"{_S}description":
                self.errors.append(self.error(f"switch: unexpected element <{_local(child)}>", child))
        out["cases"] = cases
        return out

    def log(self, el: etree._Element, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("level", "category", "separator"):
            self.attr(el, path, out, name)
        props: list[dict[str, Any]] = []
        for child in _element_children(el):
            if child.tag == f"{_S}property":
                prop_path = (*path, "properties", len(props))
                self.mark(prop_path, child)
                prop: dict[str, Any] = {}
                self.attr(child, prop_path, prop, "name")
                if child.get("value") is not None:
                    self.attr(child, prop_path, prop, "value")
                else:
                    self.attr(child, prop_path, prop, "expression")
                if "name" not in prop or len(prop) != 2:
                    self.errors.append(
                        self.error("log: a <property> needs a 'name' and a 'value' or an 'expression'", child)
                    )
                    continue
                props.append(prop)
            elif child.tag != f"{_S}description":
                self.errors.append(self.error(f"log: unexpected element <{_local(child)}>", child))
        if props:
            out["properties"] = props
        return out

    def payloadFactory(self, el: etree._Element, path: Path) -> dict[str, Any]:  # noqa: N802 - Synapse name
        out: dict[str, Any] = {}
        self.attr(el, path, out, "media-type")
        media = (out.get("media-type") or "xml").lower()
        fmt = el.find(f"{_S}format")
        if fmt is None:
            raise self.error("payloadFactory: a <format> element is required", el)
        if fmt.get("key"):
            raise self.error(
                "payloadFactory: <format key=...> (format from the registry) is not supported; inline the format",
                fmt,
                "format@key",
            )
        self.mark((*path, "format"), fmt)
        if media == "xml":
            elements = _element_children(fmt)
            if not elements:
                raise self.error("payloadFactory: the xml <format> needs an element inside", fmt)
            # The first child element, serialized with the namespaces in scope: a prefix-less element
            # in a config whose default namespace is Synapse's comes out in that namespace (PF3).
            out["format"] = xmlsafe.serialize(_clean_copy(elements[0]))
        else:
            out["format"] = (fmt.text or "").strip()
        args_el = el.find(f"{_S}args")
        args: list[dict[str, Any]] = []
        if args_el is not None:
            for arg in _element_children(args_el):
                if arg.tag != f"{_S}arg":
                    self.errors.append(
                        self.error(f"payloadFactory: unexpected element <{_local(arg)}> in <args>", arg)
                    )
                    continue
                arg_path = (*path, "args", len(args))
                self.mark(arg_path, arg)
                item: dict[str, Any] = {}
                if arg.get("value") is not None:
                    self.attr(arg, arg_path, item, "value")
                elif arg.get("expression") is not None:
                    self.attr(arg, arg_path, item, "expression")
                    self.attr(arg, arg_path, item, "evaluator")
                    literal = arg.get("literal")
                    if literal is not None:
                        item["literal"] = literal.strip().lower() == "true"
                else:
                    self.errors.append(
                        self.error("payloadFactory: an <arg> needs 'value' or 'expression'", arg)
                    )
                    continue
                args.append(item)
        out["args"] = args
        return out

    def header(self, el: etree._Element, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("name", "scope", "action"):
            self.attr(el, path, out, name)
        if el.get("value") is not None:
            self.attr(el, path, out, "value")
        else:
            self.attr(el, path, out, "expression")
        if "name" not in out:
            if _element_children(el):
                raise self.error(
                    "header: inline SOAP header elements are not supported; use name and value", el
                )
            raise self.error("header: the 'name' attribute is required", el, "header@name")
        return out

    def enrich(self, el: etree._Element, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part, attrs in (
            ("source", ("type", "xpath", "property")),
            ("target", ("type", "action", "xpath", "property")),
        ):
            child = el.find(f"{_S}{part}")
            if child is None:
                raise self.error(f"enrich: a <{part}> element is required", el)
            part_path = (*path, part)
            self.mark(part_path, child)
            spec: dict[str, Any] = {}
            for name in attrs:
                self.attr(child, part_path, spec, name)
            if part == "source":
                clone = child.get("clone")
                if clone is not None:
                    spec["clone"] = clone.strip().lower() != "false"
                if child.get("key"):
                    raise self.error(
                        "enrich: inline sources from the registry (key) are not supported",
                        child,
                        "source@key",
                    )
                if spec.get("type") == "inline":
                    inner = _element_children(child)
                    spec["inline"] = (
                        xmlsafe.serialize(_clean_copy(inner[0])) if inner else (child.text or "").strip()
                    )
            out[part] = spec
        return out

    def endpoint(self, el: etree._Element, path: Path) -> dict[str, Any]:
        """An ``<endpoint>``: ``{"key": name}`` for a reference, else ``{"http"|"address": spec}``."""
        self.mark(path, el)
        if el.get("key-expression"):
            raise self.error(
                'dynamic endpoint references (key-expression) are not supported: use key="name"',
                el,
                "endpoint@key-expression",
            )
        if el.get("template"):
            raise self.error(
                "endpoint templates (<endpoint template=...>) are not supported: define the endpoint in full",
                el,
                "endpoint@template",
            )
        kinds = [c for c in _element_children(el) if c.tag not in (f"{_S}description", f"{_S}property")]
        if el.get("key"):
            if kinds:
                raise self.error("an <endpoint key=...> refers to a named endpoint and takes no children", el)
            self.doc.labels[path] = "endpoint@key"
            return {"key": el.get("key")}
        if len(kinds) != 1:
            raise self.error("an <endpoint> needs exactly one <http> or <address> element (or a key)", el)
        kind = kinds[0]
        local = _local(kind)
        spec: dict[str, Any] = {}
        kind_path = (*path, local)
        self.mark(kind_path, kind)
        if kind.tag == f"{_S}http":
            self.attr(kind, kind_path, spec, "method")
            self.attr(kind, kind_path, spec, "uri-template")
            if "uri-template" not in spec:
                raise self.error(
                    "<http> endpoint: the 'uri-template' attribute is required", kind, "http@uri-template"
                )
        elif kind.tag == f"{_S}address":
            self.attr(kind, kind_path, spec, "uri")
            self.attr(kind, kind_path, spec, "format")
            if "uri" not in spec:
                raise self.error("<address> endpoint: the 'uri' attribute is required", kind, "address@uri")
        elif local in ("loadbalance", "failover", "wsdl", "default", "recipientlist"):
            raise self.error(
                f"<{local}> endpoints are not supported by sfbulk (use <http> or <address>)", kind
            )
        else:
            raise self.error(f"endpoint type <{local}> is not supported (use <http> or <address>)", kind)
        properties: dict[str, str] = {}
        for prop in el.findall(f"{_S}property"):
            name, value = prop.get("name"), prop.get("value")
            if not name or value is None:
                raise self.error("an endpoint <property> needs 'name' and 'value'", prop)
            properties[name] = value
        if properties:
            spec["properties"] = properties
        for extra in _element_children(kind):
            if extra.tag == f"{_S}timeout":
                self.endpoint_timeout(extra, spec, kind_path)
            else:
                log.warning(
                    "%s:%s: <%s> inside <%s> is ignored by sfbulk",
                    self.filename,
                    extra.sourceline,
                    _local(extra),
                    local,
                )
        return {local: spec}

    def endpoint_timeout(self, el: etree._Element, spec: dict[str, Any], path: Path) -> None:
        """``<timeout><duration>ms</duration><responseAction>fault|discard|never</responseAction></timeout>``."""
        duration = el.find(f"{_S}duration")
        if duration is not None:
            millis = self.integer(duration.text or "", duration, "timeout/duration")
            if millis <= 0:
                raise self.error("timeout/duration must be a positive number of milliseconds", duration)
            spec["timeout"] = millis / 1000
            self.mark((*path, "timeout"), duration, "timeout/duration")
        action = el.find(f"{_S}responseAction")
        if action is not None:
            spec["responseAction"] = (action.text or "").strip().lower()
            self.mark((*path, "responseAction"), action, "timeout/responseAction")

    def call(self, el: etree._Element, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        blocking = el.get("blocking")
        if blocking is not None:
            out["blocking"] = blocking.strip().lower() == "true"
        endpoint = el.find(f"{_S}endpoint")
        if endpoint is None:
            raise self.error("call: an <endpoint> is required", el)
        out["endpoint"] = self.endpoint(endpoint, (*path, "endpoint"))
        return out

    def send(self, el: etree._Element, path: Path) -> dict[str, Any] | None:
        endpoint = el.find(f"{_S}endpoint")
        if endpoint is None:
            return None
        return {"endpoint": self.endpoint(endpoint, (*path, "endpoint"))}

    def empty(self, el: etree._Element, path: Path) -> None:
        return None

    def direction(self, el: etree._Element, path: Path) -> list[Any]:
        """``<in>``/``<out>``: a mediator list run in one direction only."""
        return self.mediators(el, path)

    def sequence(self, el: etree._Element, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.attr(el, path, out, "key")
        if "key" not in out:
            raise self.error(
                "a <sequence> inside a mediator list needs a 'key' (the name of a sequence)",
                el,
                "sequence@key",
            )
        return out

    def call_template(self, el: etree._Element, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.attr(el, path, out, "target")
        if "target" not in out:
            raise self.error("call-template: the 'target' attribute is required", el, "call-template@target")
        params: dict[str, Any] = {}
        for child in _element_children(el):
            if child.tag != f"{_S}with-param":
                self.errors.append(self.error(f"call-template: unexpected element <{_local(child)}>", child))
                continue
            name = child.get("name")
            if not name:
                self.errors.append(
                    self.error("call-template: <with-param> needs a 'name'", child, "with-param@name")
                )
                continue
            param_path = (*path, "with-param", name)
            self.mark(param_path, child, f"with-param[{name}]")
            params[name] = child.get("value")
        out["with-param"] = params
        return out

    def connector_operation(self, el: etree._Element, path: Path) -> dict[str, Any]:
        """``<lib.op>``: each child element is a parameter; its direct text is the value (2.4).

        Empty text means the parameter is not passed at all, so a value set earlier survives.
        """
        params: dict[str, Any] = {}
        for child in _element_children(el):
            name = _local(child)
            text = _direct_text(child)
            if text == "":
                continue
            params[name] = text
            self.mark((*path, name), child, f"{_local(el)}/{name}")
        return params


_MEDIATORS = {
    "property": _Reader.property,
    "filter": _Reader.filter,
    "switch": _Reader.switch,
    "log": _Reader.log,
    "payloadFactory": _Reader.payloadFactory,
    "header": _Reader.header,
    "enrich": _Reader.enrich,
    "call": _Reader.call,
    "send": _Reader.send,
    "respond": _Reader.empty,
    "drop": _Reader.empty,
    "loopback": _Reader.empty,
    "sequence": _Reader.sequence,
    "call-template": _Reader.call_template,
    "in": _Reader.direction,
    "out": _Reader.direction,
}


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else str(el.tag)


def _element_children(el: etree._Element) -> list[etree._Element]:
    """Element children only: text, comments and processing instructions are not mediators."""
    return [c for c in el if isinstance(c.tag, str)]


def _direct_text(el: etree._Element) -> str:
    """OMElement.getText(): the element's own text nodes concatenated, child elements' text ignored."""
    parts = [el.text or ""]
    parts.extend(child.tail or "" for child in el)
    return "".join(parts)


def _clean_copy(el: etree._Element) -> etree._Element:
    """A detached copy without comments and whitespace-only text (payloadFactory's format capture)."""
    dup = copy.deepcopy(el)
    dup.tail = None
    for node in list(dup.iter()):
        if not isinstance(node.tag, str):  # comment / PI
            parent = node.getparent()
            if parent is not None:
                _remove_keep_tail(node)
            continue
        if node.text is not None and not node.text.strip() and len(node):
            node.text = None
        for child in node:
            if child.tail is not None and not child.tail.strip():
                child.tail = None
    etree.cleanup_namespaces(dup)  # keep only the declarations the copy uses
    return dup


def _remove_keep_tail(node: etree._Element) -> None:
    parent = node.getparent()
    assert parent is not None
    tail = node.tail
    if tail:
        prev = node.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(node)
