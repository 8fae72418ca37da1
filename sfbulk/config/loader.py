"""Load config files and folders (Synapse .xml, YAML .yaml/.yml) all-or-nothing.

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
from sfbulk.config.document import Document
from sfbulk.config.synapse import NotSynapseConfig, read_synapse_file
from sfbulk.config.yaml_config import read_yaml_file, validate
from sfbulk.errors import ConfigError, ConfigErrors
from sfbulk.mediators import Proxy, Sequence, SequenceReference

log = logging.getLogger("sfbulk.config")

XML_SUFFIXES = (".xml",)
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class LoadedConfig:
    """What a set of config files defines. ``warnings`` are legal but suspicious (unresolved names)."""

    proxies: dict[str, Proxy] = field(default_factory=dict)
    sequences: dict[str, Sequence] = field(default_factory=dict)
    local_entries: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


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
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in XML_SUFFIXES + YAML_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                errors.append(
                    ConfigError("no .xml, .yaml or .yml config files in this folder", file=str(path))
                )
            files.extend(found)
            from_folders.update(found)
        elif path.is_file():
            if path.suffix.lower() not in XML_SUFFIXES + YAML_SUFFIXES:
                errors.append(
                    ConfigError(
                        "not a config file: expected a .xml (Synapse) or .yaml/.yml (sfbulk flows) file",
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


def read_document(path: FsPath) -> tuple[Document, list[ConfigError]]:
    """Read one file into a Document plus the problems found while reading it.

    YAML schema violations stop the file (the builder needs a valid shape); Synapse XML elements
    that cannot be read are reported and left out, so the rest of the file is still checked.
    """
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
    problems = validate(doc)
    if problems:
        raise ConfigErrors(problems)
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
    files, from_folders, errors = config_files(paths)
    loaded = LoadedConfig()
    skipped: list[str] = []
    parameter_warnings: list[str] = []
    origins: dict[tuple[str, str], str] = {}
    for path in files:
        try:
            doc, problems = read_document(path)
        except NotSynapseConfig as exc:
            if path not in from_folders:
                errors.append(exc)
            else:  # a folder may hold sample requests next to the configs
                skipped.append(f"{path}: not a Synapse config (root <{_root_name(exc)}>), skipped")
            continue
        except ConfigErrors as exc:
            errors.extend(exc.errors)
            continue
        except ConfigError as exc:
            errors.append(exc)
            continue
        file_errors = list(problems)
        builder = Builder(doc, file_errors, connectors, lenient=lenient)
        proxies, sequences, entries = builder.build()
        parameter_warnings.extend(builder.warnings)
        errors.extend(sorted(file_errors, key=lambda e: e.line or 0))
        tables: tuple[tuple[str, dict[str, Any], dict[str, Any]], ...] = (
            ("proxy", proxies, loaded.proxies),
            ("sequence", sequences, loaded.sequences),
            ("localEntry", entries, loaded.local_entries),
        )
        for kind, table, target in tables:
            section = {"proxy": "proxies", "sequence": "sequences", "localEntry": "localEntries"}[kind]
            for name, value in table.items():
                line = doc.line_of((section, name))
                here = f"{doc.filename}:{line}" if line else doc.filename
                previous = origins.get((kind, name))
                if previous is not None:
                    errors.append(
                        ConfigError(
                            f"{kind} {name!r} is already defined at {previous}", file=doc.filename, line=line
                        )
                    )
                    continue
                origins[(kind, name)] = here
                target[name] = value
    if errors:
        raise ConfigErrors(errors)
    # Returned, not logged: the caller decides how to show them (the Engine logs them, validate prints).
    loaded.warnings = skipped + parameter_warnings + _unresolved_references(loaded)
    return loaded


def _root_name(exc: ConfigError) -> str:
    return exc.message[1 : exc.message.index(">")] if exc.message.startswith("<") else "?"


def _unresolved_references(config: LoadedConfig) -> list[str]:
    """Names of sequences used but not defined: legal (Synapse resolves at run time) but likely typos."""
    known = set(config.sequences) | {"fault", "main"}
    warnings: list[str] = []

    def check(name: str | None, where: str) -> None:
        if name and name not in known:
            warnings.append(f"{where}: sequence {name!r} is not defined in the loaded configs")

    def walk(mediators: Iterable[Any], where: str) -> None:
        for mediator in mediators:
            if isinstance(mediator, SequenceReference) and isinstance(mediator.key, str):
                check(mediator.key, where)
            for attr in ("then_sequence", "else_sequence"):
                check(getattr(mediator, attr, None), where)
            for attr in ("mediators", "then", "else_", "default"):
                children = getattr(mediator, attr, None)
                if isinstance(children, tuple):
                    walk(children, where)
            for case in getattr(mediator, "cases", ()) or ():
                walk(case.mediators, where)

    for name, sequence in config.sequences.items():
        check(sequence.on_error, f"sequence {name}")
        walk(sequence.mediators, f"sequence {name}")
    for name, proxy in config.proxies.items():
        where = f"proxy {name} ({proxy.source})"
        for slot in (proxy.in_sequence, proxy.out_sequence, proxy.fault_sequence):
            if isinstance(slot, str):
                check(slot, where)
            elif isinstance(slot, Sequence):
                check(slot.on_error, where)
                walk(slot.mediators, where)
    return warnings
