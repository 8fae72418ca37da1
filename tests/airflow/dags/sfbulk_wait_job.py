"""Test DAG: wait for a Bulk job in deferrable mode (the trigger runs inline under dag.test())."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from sfbulk.airflow.triggers import SfBulkJobSensor

with DAG(
    dag_id="sfbulk_wait_job",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={"job_id": Param(type="string")},
) as dag:
    SfBulkJobSensor(
        task_id="wait", job_id="{{ params.job_id }}", deferrable=True, poke_interval=0.5, timeout=120
    )
