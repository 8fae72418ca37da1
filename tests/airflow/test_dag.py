"""The example DAG (examples/airflow/sfbulk_contacts.py) run by ``dag.test()`` against the emulator:
extract -> transform (PythonOperator) -> load 50,000 rows -> an sfbulk flow; XCom stays small."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import pytest

ROWS = 50_000
ACCOUNTS = 40
XCOM_LIMIT = 10 * 1024  # bytes, all of the run's XCom values together


def seed_accounts(emu: Any, tmp_path: Path, tag: str) -> None:
    """Accounts for the DAG's extract, loaded through the hook's own connection."""
    from sfbulk.airflow.hooks import SfBulkHook
    from sfbulk.bulk.load import LoadOptions, load_csv

    src = tmp_path / "accounts-seed.csv"
    src.write_text("Name\n" + "".join(f"Airflow {tag} {i}\n" for i in range(ACCOUNTS)), encoding="utf-8")
    with SfBulkHook().get_conn() as conn:
        summary = load_csv(conn, str(src), LoadOptions(object="Account"))
    assert summary.succeeded == ACCOUNTS


def contacts_in(emu: Any, domain: str) -> int:
    rows = emu.store.reader().execute(
        'SELECT COUNT(*) FROM "sobj_Contact" WHERE "Email" LIKE ?', (f"%@{domain}",)
    )
    return int(next(iter(rows))[0])


def run_xcoms(dag_id: str, run_id: str) -> dict[str, Any]:
    """Every XCom value of the run as stored in the metadata DB (JSON), by task id."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(XComModel.task_id, XComModel.key, XComModel.value).where(
                XComModel.dag_id == dag_id, XComModel.run_id == run_id
            )
        ).all()
    return {f"{task}.{key}": value for task, key, value in rows}


@pytest.mark.slow
def test_the_example_dag_extracts_transforms_loads_50000_rows_and_runs_a_flow(
    airflow_db: str, emulator: Any, sfbulk_conn: str, tmp_path: Path
) -> None:
    import sfbulk_contacts  # examples/airflow/, through the DAG folder the conftest made

    tag = f"t{time.monotonic_ns()}"
    domain = f"{tag}.example.com"
    seed_accounts(emulator, tmp_path, tag)
    work = tmp_path / "work"
    dag = sfbulk_contacts.dag
    conf = {"work_dir": str(work), "rows": ROWS, "domain": domain, "account_prefix": f"Airflow {tag}"}
    started = time.monotonic()
    run = dag.test(run_conf=conf)
    seconds = time.monotonic() - started
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    print(f"\ndag.test() of sfbulk_contacts with {ROWS:,} rows: {seconds:.1f} s")

    assert contacts_in(emulator, domain) == ROWS  # every row once
    xcoms = run_xcoms(dag.dag_id, run.run_id)
    sizes = {key: len(json.dumps(value)) for key, value in xcoms.items()}
    print(f"XCom sizes (bytes): {sizes}, total {sum(sizes.values())}")
    assert sum(sizes.values()) < XCOM_LIMIT, sizes

    values = {key.split(".")[0]: value for key, value in xcoms.items() if key.endswith(".return_value")}
    values = {k: json.loads(v) if isinstance(v, str) else v for k, v in values.items()}
    load = values["load_contacts"]
    assert (load["rows"], load["succeeded"], load["failed"]) == (ROWS, ROWS, 0)
    with open(load["success_path"], encoding="utf-8", newline="") as fh:
        assert sum(1 for _ in csv.reader(fh)) == ROWS + 1
    assert Path(load["error_path"]).exists()
    extract = values["extract_accounts"]
    assert extract["rows"] == ACCOUNTS and Path(extract["output_path"]).exists()
    flow = values["check_job"]
    assert flow["status"] == 200, flow
    body = Path(flow["response_path"]).read_text(encoding="utf-8")
    assert f"<id>{load['job_id']}</id>" in body
    assert f"<numberRecordsProcessed>{ROWS}</numberRecordsProcessed>" in body
