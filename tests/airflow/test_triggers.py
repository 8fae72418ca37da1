"""SfBulkJobSensor and SfBulkJobTrigger: waiting for a Bulk job, in a worker slot or in the triggerer."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest


def open_job(emu: Any) -> str:
    from sfbulk.airflow.hooks import SfBulkHook
    from sfbulk.bulk.client import BulkClient

    with SfBulkHook().get_conn() as conn:
        return str(BulkClient(conn).create_job(operation="insert", object="Account")["id"])


def close_job(job_id: str) -> None:
    from sfbulk.airflow.hooks import SfBulkHook
    from sfbulk.bulk.client import BulkClient

    with SfBulkHook().get_conn() as conn:
        BulkClient(conn).close_job(job_id)


def test_the_sensor_pokes_until_the_job_is_closed(emulator: Any, sfbulk_conn: str) -> None:
    from sfbulk.airflow.triggers import SfBulkJobSensor

    job_id = open_job(emulator)
    sensor = SfBulkJobSensor(task_id="wait", job_id=job_id)
    assert sensor.poke({}) is False
    close_job(job_id)
    done = sensor.poke({})
    assert done.is_done and done.xcom_value == {
        "job_id": job_id,
        "state": "Closed",
        "processed": 0,
        "failed": 0,
    }


def test_the_trigger_serializes_and_fires_once_the_job_is_done(emulator: Any, sfbulk_conn: str) -> None:
    from sfbulk.airflow.triggers import SfBulkJobTrigger

    job_id = open_job(emulator)
    trigger = SfBulkJobTrigger(job_id=job_id, poll_interval=0.2, timeout=30)
    path, kwargs = trigger.serialize()
    assert path == "sfbulk.airflow.triggers.SfBulkJobTrigger"
    again = SfBulkJobTrigger(**kwargs)
    threading.Timer(1.0, close_job, (job_id,)).start()

    async def first_event() -> Any:
        async for event in again.run():
            return event.payload

    started = time.monotonic()
    payload = asyncio.run(first_event())
    assert payload["state"] == "Closed" and payload["done"] and time.monotonic() - started >= 0.9


def test_a_deferred_sensor_in_a_dag_run(airflow_db: str, emulator: Any, sfbulk_conn: str) -> None:
    import sfbulk_wait_job

    job_id = open_job(emulator)
    threading.Timer(2.0, close_job, (job_id,)).start()
    run = sfbulk_wait_job.dag.test(run_conf={"job_id": job_id})
    assert run.state == "success", [(ti.task_id, ti.state) for ti in run.get_task_instances()]


def test_an_unknown_job_fails_the_sensor_by_its_id(emulator: Any, sfbulk_conn: str) -> None:
    from airflow.sdk.exceptions import AirflowException

    from sfbulk.airflow.triggers import SfBulkJobSensor

    with pytest.raises(AirflowException, match="750000000000000AAA"):
        SfBulkJobSensor(task_id="wait", job_id="750000000000000AAA").poke({})
