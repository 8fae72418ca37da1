"""``SfBulkHook``: an Airflow connection of type ``sfbulk`` opened as a Connection of our connector.

The connection's fields map onto the connector's ``init`` parameters through one table
(:data:`sfbulk.airflow.settings.FIELDS`); the hook adds only Airflow's side: reading the connection
(the metadata DB, a secrets backend or an ``AIRFLOW_CONN_<ID>`` variable in JSON form) and naming
the connection in every error.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from airflow.sdk import BaseHook

from sfbulk.airflow.settings import CONN_TYPE, DEFAULT_CONN_ID, Resolved, resolve, ui_field_behaviour
from sfbulk.errors import ConfigError, SfBulkError

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.connector.connection import Connection
    from sfbulk.engine.engine import Engine
    from sfbulk.registry import Registry

#: a well-formed job id no org has: what the connection test asks Salesforce for
PROBE_JOB_ID = "750000000000000AAA"
#: the bundled connector of each Bulk API version (both share init, the token life cycle and registry)
BUNDLES = {1: "salesforcebulk", 2: "salesforcebulkv2"}


class SfBulkHook(BaseHook):
    """Opens connections of our connector for an Airflow connection of type ``sfbulk``.

    :param sfbulk_conn_id: the Airflow connection id (default ``sfbulk_default``).
    """

    conn_name_attr = "sfbulk_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "Salesforce Bulk (sfbulk)"

    def __init__(self, sfbulk_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sfbulk_conn_id = sfbulk_conn_id
        self._resolved: Resolved | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Airflow < 3.2 reads the form from the hook (newer ones from the provider info)."""
        behaviour = ui_field_behaviour()
        return {
            "hidden_fields": behaviour["hidden-fields"],
            "relabeling": behaviour["relabeling"],
            "placeholders": behaviour["placeholders"],
        }

    def settings(self) -> Resolved:
        """The connection's init parameters and registry (read once per hook)."""
        if self._resolved is None:
            conn = self.get_connection(self.sfbulk_conn_id)
            if conn.conn_type not in (None, "", CONN_TYPE):
                raise ConfigError(
                    f"Airflow connection {self.sfbulk_conn_id!r} is of type {conn.conn_type!r}; "
                    f"the sfbulk operators need a connection of type {CONN_TYPE!r}"
                )
            self._resolved = resolve(
                self.sfbulk_conn_id,
                host=conn.host,
                login=conn.login,
                password=conn.password,
                port=conn.port,
                extra=conn.extra_dejson,
            )
        return self._resolved

    def registry(self) -> Registry:
        settings = self.settings()
        return open_registry(settings.registry, self.sfbulk_conn_id, settings.registry_key_file)

    def get_conn(self, api: int = 1) -> Connection:
        """A Connection of the Bulk API ``api`` (1 or 2) bundle; close it when done."""
        from sfbulk.connector.connection import Connector

        params: dict[str, Any] = dict(self.settings().init)
        try:
            return Connector.load(BUNDLES[api]).connection(registry=self.registry(), **params)
        except SfBulkError as exc:
            raise type(exc)(self.message(str(exc))) from None

    def engine(self, file_root: str | os.PathLike[str] | None = ".") -> Engine:
        """An Engine whose flows get this connection's settings for every init parameter they leave
        empty (``salesforcebulk.init`` with no parameters, or ``{$ctx:...}`` that are unset)."""
        from sfbulk.connector.connection import BUNDLED
        from sfbulk.engine.engine import Engine

        settings = self.settings()
        init = dict(settings.init)
        engine = Engine(registry=self.registry(), init_defaults={name: init for name in BUNDLED})
        engine.file_root = file_root
        return engine

    def test_connection(self) -> tuple[bool, str]:
        """The UI's Test button: one authenticated Bulk API call (reading a job id that does not exist).

        Salesforce answering ``InvalidJob`` proves the instance URL and the credentials (a token was
        obtained and accepted); anything else is reported with the field it concerns.
        """
        from sfbulk.bulk.client import BulkClient
        from sfbulk.errors import ApiError

        try:
            with self.get_conn() as conn:
                BulkClient(conn).get_job(PROBE_JOB_ID)
        except ApiError as exc:
            if exc.exception_code == "InvalidJob":
                return True, "Salesforce accepted the connection's credentials"
            return False, self.message(str(exc))
        except (SfBulkError, OSError) as exc:
            return False, self.message(str(exc))
        return True, "Salesforce accepted the connection's credentials"

    def message(self, text: str) -> str:
        """A connector message with the init parameter names replaced by the connection fields."""
        labels = self._resolved.labels if self._resolved else {}
        for param, label in labels.items():
            named = f"{label} of connection {self.sfbulk_conn_id!r}"
            text = re.sub(rf"(?<![<\w/])'?\b{param}\b'?(?![>\w])", named, text)
        return text


def open_registry(value: str, conn_id: str, key_file: str = "") -> Registry:
    """The token registry named by ``extra.registry``: a folder, ``file://`` URL or ``postgresql://`` URL."""
    from sfbulk.registry import open_registry as open_store

    parts = urlsplit(value)
    if parts.scheme == "file":
        value = unquote(parts.path)
    return open_store(
        value, key_file=key_file or None, option=f"extra.registry of Airflow connection {conn_id!r}"
    )
