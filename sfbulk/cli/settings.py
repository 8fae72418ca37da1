"""``--settings FILE`` of ``sfbulk serve`` / ``sfbulk run``, and the outbound allow-list they build.

The settings file is YAML; today it holds the security settings (docs/security.md):

    security:
      allow_hosts:                 # added to Salesforce's domains and the --token-endpoint host
        - "*.my.salesforce.com"
        - "proxy.example.com:8443"

Unknown keys are errors (a typo must not silently drop a restriction). ``--allow-host`` flags add
to the file's list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from sfbulk.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover - the transport (requests) is imported when a policy is built
    from sfbulk.transport import HostPolicy

FC = TypeVar("FC", bound=Callable[..., object])

#: section → keys it may hold
KNOWN_KEYS: dict[str, frozenset[str]] = {"security": frozenset({"allow_hosts"})}


@dataclass
class Settings:
    allow_hosts: list[str] = field(default_factory=list)
    #: where each allow_hosts entry came from (for error messages): "file:line"
    origins: list[str] = field(default_factory=list)


def load_settings(path: str | Path | None) -> Settings:
    """Read and check a settings file; ConfigError (file, line, key) for anything wrong."""
    settings = Settings()
    if path is None:
        return settings
    from sfbulk.config.document import Document

    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the settings file: {getattr(exc, 'strerror', None) or exc}", file=name
        ) from None
    doc = Document.from_yaml(text, name)
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(
            "a settings file is a mapping, e.g. 'security: {allow_hosts: [...]}'", file=name, line=1
        )
    for section, values in data.items():
        if section not in KNOWN_KEYS:
            raise ConfigError(
                f"unknown section {section!r}; sections are: {', '.join(KNOWN_KEYS)}",
                file=name,
                line=doc.line_of((section,)),
            )
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{section} must be a mapping", file=name, line=doc.line_of((section,)))
        for key in values:
            if key not in KNOWN_KEYS[section]:
                raise ConfigError(
                    f"unknown key {section}.{key}; known: {', '.join(sorted(KNOWN_KEYS[section]))}",
                    file=name,
                    line=doc.line_of((section, key)),
                )
    hosts = (data.get("security") or {}).get("allow_hosts")
    if hosts is None:
        return settings
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise ConfigError(
            "security.allow_hosts must be a list of host patterns (strings)",
            file=name,
            line=doc.line_of(("security", "allow_hosts")),
        )
    for index, host in enumerate(hosts):
        settings.allow_hosts.append(host)
        line = doc.line_of(("security", "allow_hosts", index))
        settings.origins.append(f"{name}:{line}" if line else name)
    return settings


def build_host_policy(token_endpoint: str | None, settings: Settings, flags: Iterable[str]) -> HostPolicy:
    """Salesforce's domains + the --token-endpoint host:port + the file's and the flags' patterns.

    Raises click.BadParameter naming the flag (or the file and line) of a bad pattern.
    """
    from sfbulk.transport import HostPolicy

    try:
        HostPolicy.default(token_endpoint)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--token-endpoint") from None
    for pattern, origin in zip(settings.allow_hosts, settings.origins, strict=True):
        try:
            HostPolicy([pattern])
        except ValueError as exc:
            raise click.BadParameter(
                f"{origin}: security.allow_hosts: {exc}", param_hint="--settings"
            ) from None
    flag_list = list(flags)
    for pattern in flag_list:
        try:
            HostPolicy([pattern])
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--allow-host") from None
    return HostPolicy.default(token_endpoint, extra=[*settings.allow_hosts, *flag_list])


def allow_host_options(always: str) -> Callable[[FC], FC]:
    """``--allow-host`` (repeatable) and ``--settings``, shared by serve and run; ``always`` ends the help."""
    return lambda fn: _add_options(fn, always)


def _add_options(fn: FC, always: str) -> FC:
    fn = click.option(
        "--settings",
        "settings_file",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="YAML settings file; security.allow_hosts lists host patterns like --allow-host (docs/security.md).",
    )(fn)
    return click.option(
        "--allow-host",
        "allow_hosts",
        multiple=True,
        metavar="PATTERN",
        help="Also let URLs taken from messages (apiUrl, tokenEndpointHostname, a returned instance_url, "
        "a dynamic call uri-template) reach PATTERN: host, *.domain, host:port, host:* or '*' "
        f"(anything). Repeatable. {always}",
    )(fn)


#: Options ``sfbulk serve`` and ``sfbulk run`` share (``validate`` takes ``--lenient`` too): one
#: definition each, so their names, defaults and help cannot drift apart.
registry_option = click.option(
    "--registry",
    "registry_dir",
    default="registry",
    show_default=True,
    metavar="FOLDER|URL",
    help="Where tokens are cached: a folder (the file registry), or postgresql://user@host:port/db "
    "for a registry shared by several hosts (docs/registry.md).",
)
#: ``--registry-key-file``, shared by serve, run, load and extract (sfbulk.registry.crypto).
registry_key_option = click.option(
    "--registry-key-file",
    type=click.Path(dir_okay=False),
    envvar="SFBULK_REGISTRY_KEY_FILE",
    default=None,
    help="Encrypt tokens at rest in the registry with the key(s) in this file, one per line, the first "
    "current (docs/registry.md) [SFBULK_REGISTRY_KEY_FILE; or the keys in SFBULK_REGISTRY_KEY].",
)
token_endpoint_option = click.option(
    "--token-endpoint",
    default=None,
    metavar="URL",
    help="OAuth token endpoint for flows whose init does not pass tokenEndpointHostname "
    "(default https://login.salesforce.com): https://test.salesforce.com for a sandbox, "
    "or an emulator's URL.",
)
lenient_option = click.option(
    "--lenient",
    is_flag=True,
    help="Report parameters a connector operation does not declare as warnings, not errors "
    "(for configs that pass extra parameters on purpose; they are ignored).",
)
