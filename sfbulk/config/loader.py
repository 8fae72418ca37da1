"""Load config files and folders (Synapse .xml, YAML .yaml/.yml, WSO2 .car) all-or-nothing.

A folder that is (or holds) a WSO2 deployment, ``synapse-configs/default`` with ``api/``,
``proxy-services/``, ``sequences/``, ``endpoints/``, ``local-entries/`` and ``imports/``, is read
as MI deploys it: the XML files of those folders (and of the root), nothing else.

Every file is read and built; every problem is collected and raised together as ``ConfigErrors``
(each naming file, line and field), so a server never starts half-configured and a user fixes
all mistakes in one pass.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from sfbulk.config.build import Builder
from sfbulk.config.capp import CarMember, read_car
from sfbulk.config.document import Document
from sfbulk.config.synapse import NotSynapseConfig, read_synapse_file
from sfbulk.config.yaml_config import read_yaml_file, validate
from sfbulk.connector.bundle.cache import ParseCache, open_cache
from sfbulk.errors import ConfigError, ConfigErrors
from sfbulk.mediators import ConnectorOperationMediator, Proxy, Sequence, SequenceReference
from sfbulk.mediators.api import Api
from sfbulk.mediators.http import EndpointReference

log = logging.getLogger("sfbulk.config")

XML_SUFFIXES = (".xml",)
YAML_SUFFIXES = (".yaml", ".yml")
CAR_SUFFIXES = (".car",)  # WSO2 Carbon Applications (sfbulk/config/capp.py)


@dataclass
class LoadedConfig:
    """What a set of config files defines. ``warnings`` are legal but suspicious (unresolved names)."""

    proxies: dict[str, Proxy] = field(default_factory=dict)
    sequences: dict[str, Sequence] = field(default_factory=dict)
    local_entries: dict[str, Any] = field(default_factory=dict)
    apis: dict[str, Api] = field(default_factory=dict)  # by key: name, or name:v<version>
    endpoints: dict[str, Any] = field(default_factory=dict)
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)  # connector -> (status, file:line)
    warnings: list[str] = field(default_factory=list)


#: The artifact folders of a WSO2 deployment (``synapse-configs/default``) that sfbulk reads; the
#: others hold artifacts sfbulk does not run, and their files are reported if present.
DEPLOYMENT_FOLDERS = ("api", "proxy-services", "sequences", "endpoints", "local-entries", "imports")
_OTHER_DEPLOYMENT_FOLDERS = (
    "templates",
    "tasks",
    "message-stores",
    "message-processors",
    "inbound-endpoints",
    "priority-executors",
    "event-sources",
)


def deployment_root(folder: FsPath) -> FsPath | None:
    """``folder`` itself when it is ``synapse-configs/default``, else the one it contains, else None.

    Recognised: ``.../synapse-configs/default``, a folder holding ``synapse-configs/default``
    (``repository/deployment/server``) and an MI home (``repository/deployment/server/...``).
    """
    if folder.name == "default" and folder.parent.name == "synapse-configs":
        return folder
    for candidate in (
        folder / "synapse-configs" / "default",
        folder / "repository" / "deployment" / "server" / "synapse-configs" / "default",
    ):
        if candidate.is_dir():
            return candidate
    return None


def _outside_deployments(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """A note for each folder given that holds a deployment plus config-like files MI would not read."""
    notes = []
    for raw in paths:
        path = FsPath(raw)
        root = deployment_root(path) if path.is_dir() else None
        if root is None or root == path:
            continue
        synapse_configs = root.parent
        outside = [
            p
            for p in path.rglob("*")
            if p.suffix.lower() in XML_SUFFIXES + YAML_SUFFIXES
            and synapse_configs not in p.parents
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        ]
        if outside:
            notes.append(
                f"{path}: read as a WSO2 deployment (only {root}); {len(outside)} other .xml/.yaml file(s) "
                f"in it are not read, e.g. {outside[0]}"
            )
    return notes


def _nested_deployments(folder: FsPath) -> list[FsPath]:
    """Every ``synapse-configs/default`` below ``folder`` (hidden folders skipped)."""
    return sorted(
        p / "default"
        for p in folder.rglob("synapse-configs")
        if (p / "default").is_dir() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _deployment_files(root: FsPath) -> list[FsPath]:
    """The files MI deploys from ``root``: its XML, that of each artifact folder (one level), and the
    Carbon Applications in ``carbonapps/`` beside ``synapse-configs`` (``repository/deployment/server``)."""
    found = [p for p in root.glob("*.xml") if p.is_file()]
    for name in DEPLOYMENT_FOLDERS + _OTHER_DEPLOYMENT_FOLDERS:
        folder = root / name
        if folder.is_dir():
            found.extend(p for p in folder.glob("*.xml") if p.is_file() and not p.name.startswith("."))
    carbonapps = root.parent.parent / "carbonapps"
    if carbonapps.is_dir():
        found.extend(p for p in carbonapps.glob("*.car") if p.is_file() and not p.name.startswith("."))
    return sorted(found)


def config_files(
    paths: Iterable[str | os.PathLike[str]],
) -> tuple[list[FsPath], set[FsPath], list[ConfigError]]:
    """Expand files and folders (recursively, sorted, hidden entries skipped) into config files.

    Returns the files, the subset found by expanding folders, and the problems with `paths`.
    """
    files: list[FsPath] = []
    from_folders: set[FsPath] = set()
    errors: list[ConfigError] = []
    for raw in paths:
        path = FsPath(raw)
        deployment = deployment_root(path) if path.is_dir() else None
        if deployment is not None:
            found = _deployment_files(deployment)
            if not found:
                errors.append(
                    ConfigError(
                        "this WSO2 deployment folder holds no artifact (.xml) files", file=str(deployment)
                    )
                )
            files.extend(found)
            from_folders.update(found)
        elif path.is_dir():
            nested = _nested_deployments(path)
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in XML_SUFFIXES + YAML_SUFFIXES + CAR_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
                and not any(root in p.parents for root in nested)
                and not any(root.parent.parent / "carbonapps" in p.parents for root in nested)
            )
            for root in nested:  # a deployment inside the folder is read as MI deploys it
                found.extend(_deployment_files(root))
            if not found:
                errors.append(
                    ConfigError("no .xml, .yaml or .yml config files in this folder", file=str(path))
                )
            files.extend(found)
            from_folders.update(found)
        elif path.is_file():
            if path.suffix.lower() not in XML_SUFFIXES + YAML_SUFFIXES + CAR_SUFFIXES:
                errors.append(
                    ConfigError(
                        "not a config file: expected a .xml (Synapse), .yaml/.yml (sfbulk flows) "
                        "or .car (WSO2 Carbon Application) file",
                        file=str(path),
                    )
                )
            else:
                files.append(path)
        else:
            errors.append(ConfigError("no such file or folder", file=str(path)))
    unique = list(dict.fromkeys(files))
    explicit = {p for p in unique if p not in from_folders}
    return unique, {p for p in unique if p not in explicit}, errors


#: the start-up cache kind of "this YAML flows text passed the JSON Schema"
FLOWS_SCHEMA_PASSED = "flows-schema"


def read_document(
    path: FsPath | CarMember, cache: ParseCache | None = None
) -> tuple[Document, list[ConfigError]]:
    """Read one file (or one artifact of a .car) into a Document plus the problems found reading it.

    YAML schema violations stop the file (the builder needs a valid shape); Synapse XML elements
    that cannot be read are reported and left out, so the rest of the file is still checked.
    A YAML text that passed the schema before (``cache``, the bundle's start-up cache) is not
    checked again: the check and the jsonschema import were half of a warm `sfbulk run` start.
    """
    if isinstance(path, CarMember):
        return read_synapse_file(path.read_bytes(), path.label)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None
    if path.suffix.lower() in XML_SUFFIXES:
        return read_synapse_file(data, str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", file=str(path)) from None
    doc = read_yaml_file(text, str(path))
    if cache is not None and cache.get(FLOWS_SCHEMA_PASSED, text) is True:
        return doc, []
    problems = validate(doc)
    if problems:
        raise ConfigErrors(problems)
    if cache is not None:
        cache.put(FLOWS_SCHEMA_PASSED, text, True)
    return doc, []


def load_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    connectors: Mapping[str, Any] | None = None,
    lenient: bool = False,
) -> LoadedConfig:
    """Load every config under `paths`; raise ``ConfigErrors`` listing every problem if any.

    ``connectors`` (name -> Connector) lets connector operations be checked at load time
    (unknown connector, operation or parameter); without it they are checked when they run.
    ``lenient`` turns parameters an operation does not declare into warnings.
    """
    cache = open_cache()
    try:
        return _load_paths(list(paths), connectors, lenient, cache)
    finally:
        if cache is not None:
            cache.save()


def _load_paths(
    paths: list[str | os.PathLike[str]],
    connectors: Mapping[str, Any] | None,
    lenient: bool,
    cache: ParseCache | None,
) -> LoadedConfig:
    files, from_folders, errors = config_files(paths)
    loaded = LoadedConfig()
    skipped: list[str] = _outside_deployments(paths)
    parameter_warnings: list[str] = []
    origins: dict[tuple[str, str], str] = {}
    sources: list[FsPath | CarMember] = []
    for path in files:
        if path.suffix.lower() not in CAR_SUFFIXES:
            sources.append(path)
            continue
        try:
            contents = read_car(path, frozenset(connectors) if connectors is not None else None)
        except ConfigError as exc:
            errors.append(exc)
            continue
        sources.extend(contents.members)
        skipped.extend(contents.notes)
        for name in contents.connectors:  # a connector shipped in the application enables it
            loaded.imports.setdefault(name, ("enabled", str(path)))
            origins.setdefault(("import", name), str(path))
    for source in sources:
        try:
            doc, problems = read_document(source, cache)
        except NotSynapseConfig as exc:
            if source not in from_folders:  # named on the command line, or an artifact of a .car
                errors.append(exc)
            else:  # a folder may hold sample requests next to the configs
                skipped.append(f"{source}: not a Synapse config (root <{_root_name(exc)}>), skipped")
            continue
        except ConfigErrors as exc:
            errors.extend(exc.errors)
            continue
        except ConfigError as exc:
            errors.append(exc)
            continue
        file_errors = list(problems)
        builder = Builder(doc, file_errors, connectors, lenient=lenient)
        built = builder.build()
        parameter_warnings.extend(builder.warnings)
        errors.extend(sorted(file_errors, key=lambda e: e.line or 0))
        tables: tuple[tuple[str, str, dict[str, Any], dict[str, Any]], ...] = (
            ("proxy", "proxies", built.proxies, loaded.proxies),
            ("sequence", "sequences", built.sequences, loaded.sequences),
            ("localEntry", "localEntries", built.local_entries, loaded.local_entries),
            ("API", "apis", built.apis, loaded.apis),
            ("endpoint", "endpoints", built.endpoints, loaded.endpoints),
            ("import", "imports", built.imports, loaded.imports),
        )
        for kind, section, table, target in tables:
            for name, value in table.items():
                line = doc.line_of((section, name))
                if kind == "API" and not line:  # YAML keys a versioned API by its bare name
                    line = doc.line_of((section, value.name))
                here = f"{doc.filename}:{line}" if line else doc.filename
                previous = origins.get((kind, name))
                if previous is not None and kind == "import" and loaded.imports[name][0] == value[0]:
                    continue  # the same connector enabled twice is harmless
                if previous is not None:
                    errors.append(
                        ConfigError(
                            f"{kind} {name!r} is already defined at {previous}", file=doc.filename, line=line
                        )
                    )
                    continue
                origins[(kind, name)] = here
                target[name] = value
    errors.extend(_context_clashes(loaded))
    errors.extend(_disabled_connectors(loaded))
    if errors:
        raise ConfigErrors(errors)
    # Returned, not logged: the caller decides how to show them (the Engine logs them, validate prints).
    loaded.warnings = skipped + parameter_warnings + _unresolved_references(loaded)
    return loaded


def _context_clashes(config: LoadedConfig) -> list[ConfigError]:
    """Two APIs served at the same path: MI refuses the second one, so do we."""
    seen: dict[str, Api] = {}
    errors = []
    for api in config.apis.values():
        other = seen.get(api.full_context)
        if other is not None:
            errors.append(
                ConfigError(
                    f"API {api.key!r} is served at {api.full_context}, as API {other.key!r} ({other.source}) already is; "
                    "give one of them another context or version",
                    file=_file_of(api.source),
                    line=_line_of(api.source),
                )
            )
        else:
            seen[api.full_context] = api
    return errors


def _file_of(source: str | None) -> str | None:
    if not source:
        return None
    head, _, tail = source.rpartition(":")
    return head if tail.isdigit() and head else source


def _line_of(source: str | None) -> int | None:
    tail = (source or "").rpartition(":")[2]
    return int(tail) if tail.isdigit() else None


def _disabled_connectors(config: LoadedConfig) -> list[ConfigError]:
    """A connector operation whose connector's import says status="disabled" cannot run."""
    disabled = {name: where for name, (status, where) in config.imports.items() if status == "disabled"}
    if not disabled:
        return []
    errors = []
    for where, mediator in _walk_config(config):
        if isinstance(mediator, ConnectorOperationMediator) and mediator.connector in disabled:
            errors.append(
                ConfigError(
                    f"{where}: <{mediator.connector}.{mediator.operation}> uses connector "
                    f"{mediator.connector!r}, which the import at {disabled[mediator.connector]} disables; "
                    'set status="enabled" there'
                )
            )
    return errors


def _root_name(exc: ConfigError) -> str:
    return exc.message[1 : exc.message.index(">")] if exc.message.startswith("<") else "?"


def _walk_mediators(mediators: Iterable[Any]) -> Iterable[Any]:
    for mediator in mediators:
        yield mediator
        for attr in ("mediators", "then", "else_", "default"):
            children = getattr(mediator, attr, None)
            if isinstance(children, tuple):
                yield from _walk_mediators(children)
        for case in getattr(mediator, "cases", ()) or ():
            yield from _walk_mediators(case.mediators)


def _slots(config: LoadedConfig) -> Iterable[tuple[str, Any]]:
    """(where, slot) for every proxy and API resource in/out/fault slot and every named sequence."""
    for name, sequence in config.sequences.items():
        yield f"sequence {name}", sequence
    for name, proxy in config.proxies.items():
        for slot in (proxy.in_sequence, proxy.out_sequence, proxy.fault_sequence):
            yield f"proxy {name} ({proxy.source})", slot
    for key, api in config.apis.items():
        for resource in api.resources:
            for slot in (resource.in_sequence, resource.out_sequence, resource.fault_sequence):
                yield f"API {key} resource {resource.label} ({api.source})", slot


def _walk_config(config: LoadedConfig) -> Iterable[tuple[str, Any]]:
    """(where, mediator) for every mediator of every inline or named sequence."""
    for where, slot in _slots(config):
        if isinstance(slot, Sequence):
            for mediator in _walk_mediators(slot.mediators):
                yield where, mediator


def _unresolved_references(config: LoadedConfig) -> list[str]:
    """Sequences and endpoints used but not defined: legal (Synapse resolves at run time) but likely typos."""
    known = set(config.sequences) | {"fault", "main"}
    warnings: list[str] = []

    def check(name: str | None, where: str) -> None:
        if name and name not in known:
            warnings.append(f"{where}: sequence {name!r} is not defined in the loaded configs")

    def check_endpoint(endpoint: Any, where: str) -> None:
        if isinstance(endpoint, EndpointReference) and endpoint.key not in config.endpoints:
            warnings.append(f"{where}: endpoint {endpoint.key!r} is not defined in the loaded configs")

    for where, slot in _slots(config):
        if isinstance(slot, str):
            check(slot, where)
        elif isinstance(slot, Sequence):
            check(slot.on_error, where)
    for where, mediator in _walk_config(config):
        if isinstance(mediator, SequenceReference) and isinstance(mediator.key, str):
            check(mediator.key, where)
        for attr in ("then_sequence", "else_sequence"):
            check(getattr(mediator, attr, None), where)
        check_endpoint(getattr(mediator, "endpoint", None), where)
    for name, proxy in config.proxies.items():
        check_endpoint(proxy.endpoint, f"proxy {name} ({proxy.source})")
    return warnings
