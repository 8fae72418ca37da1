"""The Apache Airflow provider of sfbulk: a hook, and operators that move files, not payloads.

Installed with ``pip install 'sfbulk[airflow]'`` (Airflow 3.x); Airflow finds it through the
``apache_airflow_provider`` entry point, which calls :func:`get_provider_info`. This module
imports nothing of Airflow (Airflow imports it while it starts); the hook and the operators are
in :mod:`sfbulk.airflow.hooks`, :mod:`sfbulk.airflow.operators` and
:mod:`sfbulk.airflow.triggers` (the job sensor and its deferrable trigger). No other part of sfbulk
imports this package (.importlinter), so the core keeps no Airflow dependency. docs/airflow.md.
"""

from __future__ import annotations

from typing import Any

from sfbulk.airflow.settings import CONN_TYPE, conn_fields, ui_field_behaviour

INTEGRATION = "Salesforce Bulk (sfbulk)"


def get_provider_info() -> dict[str, Any]:
    """What Airflow's ProvidersManager reads: the connection type, its form, the modules."""
    from sfbulk import __version__

    return {
        "package-name": "sfbulk",
        "name": "sfbulk",
        "description": "Salesforce Bulk API 1.0 and 2.0 loads, extracts and sfbulk flows, file to file, "
        "resumable across task retries.",
        "versions": [__version__],
        "integrations": [{"integration-name": INTEGRATION, "tags": ["service"]}],
        "operators": [{"integration-name": INTEGRATION, "python-modules": ["sfbulk.airflow.operators"]}],
        "hooks": [{"integration-name": INTEGRATION, "python-modules": ["sfbulk.airflow.hooks"]}],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": ["sfbulk.airflow.triggers"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": ["sfbulk.airflow.triggers"]}],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "sfbulk.airflow.hooks.SfBulkHook",
                "hook-name": INTEGRATION,
                "conn-fields": conn_fields(),
                "ui-field-behaviour": ui_field_behaviour(),
            }
        ],
    }
