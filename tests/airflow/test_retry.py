"""A load task killed mid-load (SIGKILL of the whole Airflow process) and run again resumes the same
job through its journal: every row is in Salesforce exactly once. And a load whose rows Salesforce
refused fails its task without the retries that would load the good rows twice.

The DAG is examples/airflow/sfbulk_load_file.py; ``dag.test()`` runs in a real subprocess, the
emulator in this process (its store is counted directly). The kill point is chosen by polling the
journal the operator writes next to the input, never by a hook in the code under test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import connection_json

ROWS, BATCH = 30_000, 10_000  # the operator's default batch size: 3 batches
LOGICAL_DATE = "2026-06-01T00:00:00+00:00"

RUNNER = """
import json, sys
from datetime import datetime
import sfbulk_load_file
run = sfbulk_load_file.dag.test(logical_date=datetime.fromisoformat(sys.argv[1]), run_conf=json.loads(sys.argv[2]))
tis = {ti.task_id: [ti.state, ti.try_number] for ti in run.get_task_instances()}
print("RESULT " + json.dumps({"state": run.state, "run_id": run.run_id, "tis": tis}))
"""


def write_contacts(path: Path, tag: str, rows: int, bad_every: int = 0) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("FirstName,LastName,Email\n")
        for i in range(rows):
            last = "" if bad_every and i % bad_every == 3 else f"L{i}"
            fh.write(f"F{i},{last},{tag}{i}@example.com\n")


def stored(emu: Any, tag: str) -> list[str]:
    rows = emu.store.reader().execute('SELECT "Email" FROM "sobj_Contact" WHERE "Email" LIKE ?', (tag + "%",))
    return [r[0] for r in rows]


def journal(path: Path) -> list[dict[str, Any]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    records = []
    for line in data.split(b"\n")[:-1]:
        try:
            records.append(json.loads(line))
        except ValueError:
            break
    return records


def start_run(conf: dict[str, Any], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-c", RUNNER, LOGICAL_DATE, json.dumps(conf)],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )


def result_of(log: Path) -> dict[str, Any]:
    lines = [
        line
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
        if line.startswith("RESULT ")
    ]
    assert lines, log.read_text(encoding="utf-8", errors="replace")[-4000:]
    return dict(json.loads(lines[-1][len("RESULT ") :]))


@pytest.mark.slow
def test_a_load_killed_mid_job_resumes_the_same_job_with_no_duplicates(
    airflow_db: str, emulator_factory: Any, tmp_path: Path
) -> None:
    emu = emulator_factory(processing_delay_ms=1500)  # each batch takes 1.5 s: time to kill mid-job
    tag = f"k{time.monotonic_ns()}-"
    src = tmp_path / "contacts.csv"
    write_contacts(src, tag, ROWS)
    env = dict(os.environ, AIRFLOW_CONN_SFBULK_DEFAULT=connection_json(emu, tmp_path / "registry"))
    env["PYTHONPATH"] = os.pathsep.join([os.environ["AIRFLOW__CORE__DAGS_FOLDER"], env.get("PYTHONPATH", "")])
    conf = {"input_path": str(src), "object": "Contact"}
    jpath = tmp_path / "contacts.success.csv.journal"
    log = tmp_path / "run.log"

    first = start_run(conf, env, log)
    deadline = time.monotonic() + 180  # Airflow's start-up in the subprocess comes first
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        seen = journal(jpath)
        if any(r.get("t") == "sent" for r in seen) and not any(r.get("t") == "done" for r in seen):
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
            break
        if first.poll() is not None:
            pytest.fail(
                f"the run ended (exit {first.returncode}) before the kill point: {log.read_text()[-3000:]}"
            )
        time.sleep(0.01)
    else:
        first.kill()
        pytest.fail(f"kill point not reached; journal: {seen}")
    job_id = next(r["id"] for r in seen if r.get("t") == "job")
    assert len(stored(emu, tag)) < ROWS, "killed after the job had finished: no resume to test"

    second = start_run(conf, env, log)
    assert second.wait(timeout=300) == 0, log.read_text(encoding="utf-8", errors="replace")[-4000:]
    result = result_of(log)
    assert result["state"] == "success", result

    emails = stored(emu, tag)
    assert len(emails) == ROWS and len(set(emails)) == ROWS, "every row exactly once"
    text = log.read_text(encoding="utf-8", errors="replace")
    assert f"job {job_id}: resuming" in text or f"job {job_id}: resumed" in text, text[-4000:]
    assert not jpath.exists(), "a finished load deletes its journal"
    with (tmp_path / "contacts.success.csv").open(encoding="utf-8") as fh:
        assert sum(1 for _ in fh) == ROWS + 1


@pytest.mark.slow
def test_rows_salesforce_refused_fail_the_task_without_a_retry(
    airflow_db: str, emulator: Any, sfbulk_conn: str, tmp_path: Path
) -> None:
    import sfbulk_load_file

    tag = f"r{time.monotonic_ns()}-"
    src = tmp_path / "bad.csv"
    write_contacts(src, tag, 200, bad_every=50)  # 4 rows lack LastName: REQUIRED_FIELD_MISSING
    run = sfbulk_load_file.dag.test(run_conf={"input_path": str(src), "object": "Contact"})
    assert run.state == "failed"
    (ti,) = run.get_task_instances()
    assert (ti.state, ti.try_number) == ("failed", 1), "no retry: it would load the 196 good rows again"
    assert len(stored(emulator, tag)) == 196
    errors = (tmp_path / "bad.error.csv").read_text(encoding="utf-8")
    assert errors.count("REQUIRED_FIELD_MISSING") == 4
