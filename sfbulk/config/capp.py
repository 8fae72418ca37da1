"""WSO2 Carbon Applications (``.car``): the artifacts an MI 4 deployment ships in ``carbonapps/``.

A ``.car`` is a zip: ``artifacts.xml`` at the root and, per artifact, a folder
``<name>_<version>/`` holding ``artifact.xml`` (``<artifact name version type><file>x.xml</file>``)
and the artifact's own file. The Synapse types (``synapse/api``, ``synapse/proxy-service``,
``synapse/sequence``, ``synapse/endpoint``, ``synapse/local-entry``, ...) are read like the files of
a deployment folder; a connector (``synapse/lib``) other than salesforcebulk is reported, since
sfbulk cannot run it; registry resources and metadata are skipped with a note.

Nothing is extracted to disk. Members are read with a size cap, so a crafted archive (a zip bomb,
a huge member) is refused rather than read into memory.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sfbulk import xmlsafe
from sfbulk.errors import ConfigError, PayloadError

#: Largest artifact file read from a .car (Synapse artifacts are a few KB).
MAX_MEMBER_BYTES = 10 * 1024 * 1024
#: Artifact types that are Synapse configuration files.
SYNAPSE_TYPES = frozenset(
    {
        "synapse/api",
        "synapse/proxy-service",
        "synapse/sequence",
        "synapse/endpoint",
        "synapse/local-entry",
        "synapse/template",
        "synapse/message-store",
        "synapse/message-processors",
        "synapse/task",
        "synapse/inbound-endpoint",
        "synapse/event-source",
        "synapse/priority-executor",
        "synapse/configuration",
    }
)
#: Types that hold no mediation configuration sfbulk could run: skipped, with a note.
_SKIPPED_TYPES = {
    "registry/resource": "registry resources are not loaded; put them under the --registry folder",
    "synapse/metadata": "API metadata (Swagger) is not needed to serve the API",
    "carbon/application": "",
}
_CONNECTOR_TYPES = frozenset({"synapse/lib", "lib/synapse/mediator"})


@dataclass(frozen=True)
class CarMember:
    """One Synapse artifact inside a ``.car``; ``label`` (``app.car!/dir/file.xml``) names it in errors."""

    car: Path
    member: str

    @property
    def label(self) -> str:
        return f"{self.car}!/{self.member}"

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.member).suffix

    def read_bytes(self) -> bytes:
        with zipfile.ZipFile(self.car) as archive:
            return _read(archive, self.member, self.car)


@dataclass(frozen=True)
class CarContents:
    members: list[CarMember]
    connectors: list[str]  # names of the connector libraries the archive ships
    notes: list[str]


def read_car(car: Path, known_connectors: frozenset[str] | None = None) -> CarContents:
    """The Synapse artifacts of ``car`` (in archive order), its connectors and notes; ConfigError if unreadable."""
    try:
        archive = zipfile.ZipFile(car)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"not a readable Carbon Application (.car zip): {exc}", file=str(car)) from None
    members: list[CarMember] = []
    connectors: list[str] = []
    notes: list[str] = []
    with archive:
        descriptors = sorted(
            name for name in archive.namelist() if PurePosixPath(name).name == "artifact.xml" and "/" in name
        )
        if not descriptors:
            raise ConfigError(
                "this .car holds no <name>_<version>/artifact.xml: not a Carbon Application", file=str(car)
            )
        for descriptor in descriptors:
            label = f"{car}!/{descriptor}"
            try:
                root = xmlsafe.parse(_read(archive, descriptor, car), what=label)
            except PayloadError as exc:
                raise ConfigError(exc.message, file=label) from None
            kind = (root.get("type") or "").strip()
            name = root.get("name") or PurePosixPath(descriptor).parent.name
            folder = PurePosixPath(descriptor).parent
            files = [
                f"{folder}/{(el.text or '').strip()}" for el in root.iter("file") if (el.text or "").strip()
            ]
            if kind in SYNAPSE_TYPES:
                if not files:
                    raise ConfigError(f"artifact {name!r} ({kind}) names no <file>", file=label)
                for member in files:
                    if member not in archive.namelist():
                        raise ConfigError(
                            f"artifact {name!r} names {member!r}, which the archive lacks", file=label
                        )
                    members.append(CarMember(car, member))
            elif kind in _CONNECTOR_TYPES:
                connectors.append(_connector_name(name, files))
            elif kind in _SKIPPED_TYPES:
                if _SKIPPED_TYPES[kind]:
                    notes.append(f"{label}: {kind} artifact {name!r} skipped: {_SKIPPED_TYPES[kind]}")
            else:
                notes.append(
                    f"{label}: artifact {name!r} of type {kind or '(none)'} is not something sfbulk runs; skipped"
                )
    if known_connectors is not None:
        for connector in connectors:
            if connector not in known_connectors:
                raise ConfigError(
                    f"the .car ships the WSO2 connector {connector!r}, which is not available in sfbulk: only "
                    f"{', '.join(sorted(known_connectors)) or 'no connector'} is; see docs/connector.md",
                    file=str(car),
                )
    return CarContents(members, connectors, notes)


def _connector_name(artifact: str, files: list[str]) -> str:
    """``salesforcebulk-connector`` / ``salesforcebulk-connector-1.0.3.zip`` -> ``salesforcebulk``."""
    text = PurePosixPath(files[0]).name if files else artifact
    return text.split("-connector", 1)[0].split("_", 1)[0].lower()


def _read(archive: zipfile.ZipFile, member: str, car: Path) -> bytes:
    info = archive.getinfo(member)
    if info.file_size > MAX_MEMBER_BYTES:
        raise ConfigError(
            f"{member} is {info.file_size} bytes, over the {MAX_MEMBER_BYTES} a .car member may be",
            file=str(car),
        )
    with archive.open(info) as stream:
        data = stream.read(MAX_MEMBER_BYTES + 1)
    if len(data) > MAX_MEMBER_BYTES:  # the header lied about the size
        raise ConfigError(f"{member} expands past {MAX_MEMBER_BYTES} bytes", file=str(car))
    return data


__all__ = ["CarContents", "CarMember", "MAX_MEMBER_BYTES", "read_car"]
