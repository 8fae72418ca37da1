"""Waiting for a Bulk job without holding a worker slot: ``SfBulkJobTrigger`` and ``SfBulkJobSensor``.

A job that an earlier task (a flow's ``createJob`` and ``addBatch``, another tool, Salesforce's own
Data Loader) started can take hours to process. The sensor asks for the job's state once, and in
``deferrable`` mode hands the wait to Airflow's triggerer, which polls with the same connection
(the connector's calls are synchronous; they run in a thread of the triggerer).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from sfbulk.airflow.hooks import SfBulkHook
from sfbulk.airflow.settings import DEFAULT_CONN_ID
from sfbulk.errors import SfBulkError

#: Bulk API 2.0 final states of ingest and query jobs
FINAL_V2 = ("JobComplete", "Failed", "Aborted")


def job_status(conn_id: str, job_id: str, api: int) -> dict[str, Any]:
    """The job's state and counts, and whether Salesforce is done with it (``done``)."""
    hook = SfBulkHook(conn_id)
    with hook.get_conn(api) as conn:
        if api == 2:
            from sfbulk.bulk.v2.client import Bulk2Client

            info = Bulk2Client(conn).get_job(job_id)
            state = str(info.get("state", ""))
            return {
                "job_id": job_id,
                "state": state,
                "done": state in FINAL_V2,
                "processed": int(info.get("numberRecordsProcessed") or 0),
                "failed": int(info.get("numberRecordsFailed") or 0),
            }
        from sfbulk.bulk.client import BulkClient

        raw = BulkClient(conn).get_job(job_id)
        state = raw.get("state", "")
        pending = int(raw.get("numberBatchesQueued") or 0) + int(raw.get("numberBatchesInProgress") or 0)
        return {
            "job_id": job_id,
            "state": state,
            # a 1.0 job is done when no batch is left to process: Closed (no more batches come) or Aborted/Failed
            "done": state in ("Aborted", "Failed") or (state == "Closed" and pending == 0),
            "processed": int(raw.get("numberRecordsProcessed") or 0),
            "failed": int(raw.get("numberRecordsFailed") or 0),
        }


class SfBulkJobTrigger(BaseTrigger):
    """Polls a Bulk job every ``poll_interval`` seconds until Salesforce is done with it."""

    def __init__(
        self,
        *,
        job_id: str,
        sfbulk_conn_id: str = DEFAULT_CONN_ID,
        api: int = 1,
        poll_interval: float = 30.0,
        timeout: float = 86_400.0,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.sfbulk_conn_id = sfbulk_conn_id
        self.api = api
        self.poll_interval = poll_interval
        self.timeout = timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "sfbulk.airflow.triggers.SfBulkJobTrigger",
            {
                "job_id": self.job_id,
                "sfbulk_conn_id": self.sfbulk_conn_id,
                "api": self.api,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                status = await asyncio.to_thread(job_status, self.sfbulk_conn_id, self.job_id, self.api)
            except (SfBulkError, OSError) as exc:
                yield TriggerEvent({"job_id": self.job_id, "error": str(exc)})
                return
            if status["done"]:
                yield TriggerEvent(status)
                return
            if time.monotonic() >= deadline:
                yield TriggerEvent({**status, "error": f"still {status['state']} after {self.timeout:g} s"})
                return
            await asyncio.sleep(self.poll_interval)


class SfBulkJobSensor(BaseSensorOperator):
    """Waits until Salesforce has processed every batch of job ``job_id`` (templated).

    :param deferrable: wait in the triggerer (``SfBulkJobTrigger``) instead of a worker slot.
    :param fail_on_failed_records: fail when the job's records failed (default False: report them).
    :returns: (XCom) ``job_id``, ``state``, ``processed``, ``failed``.
    """

    template_fields: Sequence[str] = ("job_id",)

    def __init__(
        self,
        *,
        job_id: str,
        sfbulk_conn_id: str = DEFAULT_CONN_ID,
        api: int = 1,
        deferrable: bool = False,
        fail_on_failed_records: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if api not in (1, 2):
            raise ValueError(f"{self.task_id}: api must be 1 or 2, got {api!r}")
        self.job_id = job_id
        self.sfbulk_conn_id = sfbulk_conn_id
        self.api = api
        self.deferrable = deferrable
        self.fail_on_failed_records = fail_on_failed_records

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        status = self._status()
        if status["done"]:
            return self._finish(status)
        self.defer(
            trigger=SfBulkJobTrigger(
                job_id=self.job_id,
                sfbulk_conn_id=self.sfbulk_conn_id,
                api=self.api,
                poll_interval=float(self.poke_interval),
                timeout=float(self.timeout),
            ),
            method_name="execute_complete",
        )

    def poke(self, context: Mapping[str, Any]) -> Any:
        from airflow.sdk import PokeReturnValue

        status = self._status()
        self.log.info("job %s: %s, %s records processed", self.job_id, status["state"], status["processed"])
        if not status["done"]:
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._finish(status))

    def execute_complete(self, context: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
        if event.get("error"):
            raise AirflowException(f"job {self.job_id}: {event['error']}")
        return self._finish(dict(event))

    def _status(self) -> dict[str, Any]:
        try:
            return job_status(self.sfbulk_conn_id, self.job_id, self.api)
        except (SfBulkError, OSError) as exc:
            raise AirflowException(f"job {self.job_id}: {exc}") from None

    def _finish(self, status: dict[str, Any]) -> dict[str, Any]:
        result = {k: status[k] for k in ("job_id", "state", "processed", "failed")}
        self.log.info("job %s: %s, %s records processed, %s failed", self.job_id, *list(result.values())[1:])
        if status["state"] in ("Aborted", "Failed"):
            raise AirflowFailException(f"job {self.job_id} ended {status['state']}")
        if self.fail_on_failed_records and status["failed"]:
            raise AirflowFailException(f"job {self.job_id}: {status['failed']} records failed")
        return result
