"""An Airflow DAG that loads one CSV file into Salesforce, resuming its job when a retry follows a crash.

Trigger it with the file to load, e.g. ``airflow dags trigger sfbulk_load_file --conf
'{"input_path": "/data/in/contacts.csv", "object": "Contact"}'``. The success and error CSVs
are written next to the input, and so is the journal: a worker killed mid-load, then the
task's retry, continues the same Salesforce job (nothing is sent twice).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from sfbulk.airflow.operators import SfBulkLoadOperator

with DAG(
    dag_id="sfbulk_load_file",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={
        "input_path": Param(type="string", description="the CSV file to load"),
        "object": Param("Contact", type="string"),
        "operation": Param("insert", enum=["insert", "update", "upsert", "delete", "hardDelete"]),
        "external_id": Param("", type="string", description="the external id field of an upsert"),
    },
    default_args={"retries": 3, "retry_delay": timedelta(seconds=30)},
    tags=["sfbulk"],
) as dag:
    SfBulkLoadOperator(
        task_id="load",
        input_path="{{ params.input_path }}",
        object="{{ params.object }}",
        operation="{{ params.operation }}",
        external_id="{{ params.external_id }}",
    )
