"""The operators' own behaviour, by ``execute()`` against the emulator: Bulk API 2.0, the journal where
``journal_path`` says, a retry after a job that could not finish, flows run as a proxy or a sequence.
(The DAG tests run them through Airflow's task runner; these pin the details.)"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import pytest

FLOWS = Path(__file__).resolve().parents[2] / "examples" / "flows.yaml"


def context(run_id: str = "manual__test") -> dict[str, Any]:
    return {"run_id": run_id, "ti": None}


def contacts(path: Path, tag: str, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["FirstName", "LastName", "Email"])
        for i in range(rows):
            w.writerow([f"F{i}", f"L{i}", f"{tag}{i}@example.com"])


def stored(emu: Any, tag: str) -> list[str]:
    rows = emu.store.reader().execute('SELECT "Email" FROM "sobj_Contact" WHERE "Email" LIKE ?', (tag + "%",))
    return [r[0] for r in rows]


def test_load_and_extract_with_bulk_api_2(emulator: Any, sfbulk_conn: str, tmp_path: Path) -> None:
    from sfbulk.airflow.operators import SfBulkExtractOperator, SfBulkLoadOperator

    tag = f"v2{time.monotonic_ns()}-"
    src = tmp_path / "in.csv"
    contacts(src, tag, 500)
    load = SfBulkLoadOperator(task_id="load", input_path=str(src), object="Contact", api=2)
    result = load.execute(context())
    assert (result["rows"], result["succeeded"], result["failed"]) == (500, 500, 0)
    assert len(json.dumps(result)) < 1024
    out = tmp_path / "out" / "contacts.csv"
    extract = SfBulkExtractOperator(
        task_id="extract",
        soql=f"SELECT Email FROM Contact WHERE Email LIKE '{tag}%'",
        output_path=str(out),
        api=2,
    )
    got = extract.execute(context())
    assert got["rows"] == 500 and got["output_path"] == str(out)
    with out.open(encoding="utf-8", newline="") as fh:
        assert sorted(r["Email"] for r in csv.DictReader(fh)) == sorted(
            f"{tag}{i}@example.com" for i in range(500)
        )


def test_extract_with_pk_chunking_and_query_all(emulator: Any, sfbulk_conn: str, tmp_path: Path) -> None:
    from sfbulk.airflow.operators import SfBulkExtractOperator, SfBulkLoadOperator

    tag = f"pk{time.monotonic_ns()}-"
    src = tmp_path / "in.csv"
    contacts(src, tag, 300)
    SfBulkLoadOperator(task_id="load", input_path=str(src), object="Contact").execute(context())
    extract = SfBulkExtractOperator(
        task_id="extract",
        soql=f"SELECT Id, Email FROM Contact WHERE Email LIKE '{tag}%'",
        output_path=str(tmp_path / "all.csv"),
        query_all=True,
        pk_chunking=100,
    )
    got = extract.execute(context())
    assert got["rows"] == 300


def test_a_job_that_could_not_finish_fails_for_a_retry_which_resumes_it_from_journal_path(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
    from conftest import connection_json

    from sfbulk.airflow.operators import SfBulkLoadOperator

    emu = emulator_factory(processing_delay_ms=1500)
    monkeypatch.setenv("AIRFLOW_CONN_SFBULK_DEFAULT", connection_json(emu, tmp_path / "registry"))
    tag = f"j{time.monotonic_ns()}-"
    src = tmp_path / "data" / "in.csv"
    src.parent.mkdir()
    contacts(src, tag, 50)
    journal = tmp_path / "journals" / "in.journal"  # a folder the operator creates
    task = dict(task_id="load", input_path=str(src), object="Contact", journal_path=str(journal))
    with pytest.raises(AirflowException) as failed:
        SfBulkLoadOperator(poll_timeout=0.3, **task).execute(context())
    assert not isinstance(failed.value, AirflowFailException), "a job that could not finish is retried"
    assert str(journal) in str(failed.value) and "a retry of this task resumes it" in str(failed.value)
    assert journal.exists() and not (src.parent / "in.success.csv.journal").exists()

    result = SfBulkLoadOperator(**task).execute(context())
    assert result["resumed"] and result["succeeded"] == 50
    assert sorted(stored(emu, tag)) == sorted(f"{tag}{i}@example.com" for i in range(50))
    assert not journal.exists()


def test_a_retry_of_a_finished_load_returns_its_result_without_loading_again(
    emulator: Any, sfbulk_conn: str, tmp_path: Path
) -> None:
    from sfbulk.airflow.operators import SfBulkLoadOperator

    tag = f"rc{time.monotonic_ns()}-"
    src = tmp_path / "in.csv"
    contacts(src, tag, 20)
    first = SfBulkLoadOperator(task_id="load", input_path=str(src), object="Contact").execute(
        context("run-1")
    )
    again = SfBulkLoadOperator(task_id="load", input_path=str(src), object="Contact").execute(
        context("run-1")
    )
    assert again["job_id"] == first["job_id"] and len(stored(emulator, tag)) == 20
    # another DAG run of the same file is another load
    other = SfBulkLoadOperator(task_id="load", input_path=str(src), object="Contact").execute(
        context("run-2")
    )
    assert other["job_id"] != first["job_id"] and len(stored(emulator, tag)) == 40


def test_a_flow_proxy_with_a_templated_payload_gets_the_connection_settings(
    emulator: Any, sfbulk_conn: str, tmp_path: Path
) -> None:
    from sfbulk.airflow.operators import SfBulkFlowOperator

    flow = SfBulkFlowOperator(
        task_id="create",
        configs=str(FLOWS),
        proxy="createJob",
        payload="<createJob><operation>insert</operation><object>Account</object>"
        "<contentType>CSV</contentType></createJob>",
        response_path=str(tmp_path / "created.xml"),
    )
    result = flow.execute(context())
    assert result["status"] == 201, Path(result["response_path"]).read_text()
    body = (tmp_path / "created.xml").read_text(encoding="utf-8")
    assert "<state>Open</state>" in body and result["bytes"] == len(body.encode())


def test_a_flow_sequence_with_a_payload_file_returns_its_resulting_message(
    emulator: Any, sfbulk_conn: str, tmp_path: Path
) -> None:
    from sfbulk.airflow.operators import SfBulkFlowOperator

    config = tmp_path / "seq.yaml"
    config.write_text(
        "sequences:\n"
        "  jobState:\n"
        "    - salesforcebulk.init: {}\n"
        "    - property: {name: jobId, expression: //jobId/text()}\n"
        '    - salesforcebulk.getJob: {jobId: "{$ctx:jobId}"}\n',
        encoding="utf-8",
    )
    created = SfBulkFlowOperator(
        task_id="create",
        configs=str(FLOWS),
        proxy="createJob",
        payload="<createJob><operation>insert</operation><object>Account</object>"
        "<contentType>CSV</contentType></createJob>",
    ).execute(context())
    job_id = Path(created["response_path"]).read_text(encoding="utf-8").split("<id>")[1].split("</id>")[0]
    payload = tmp_path / "job.xml"
    payload.write_text(f"<job><jobId>{job_id}</jobId></job>", encoding="utf-8")
    result = SfBulkFlowOperator(
        task_id="state", configs=[str(config)], sequence="jobState", payload_path=str(payload)
    ).execute(context())
    assert result["status"] == 200 and result["response_path"] == str(payload) + ".response"
    assert f"<id>{job_id}</id>" in Path(result["response_path"]).read_text(encoding="utf-8")


def test_a_flow_answering_an_error_fails_the_task_naming_the_response_file(
    emulator: Any, sfbulk_conn: str, tmp_path: Path
) -> None:
    from airflow.sdk.exceptions import AirflowException

    from sfbulk.airflow.operators import SfBulkFlowOperator

    task = dict(
        task_id="bad",
        configs=str(FLOWS),
        proxy="getJob",
        payload="<getJob><jobId>750000000000000AAA</jobId></getJob>",
        response_path=str(tmp_path / "answer.xml"),
    )
    with pytest.raises(AirflowException, match=r"answered HTTP 400 .*answer\.xml"):
        SfBulkFlowOperator(**task).execute(context())
    assert "InvalidJob" in (tmp_path / "answer.xml").read_text(encoding="utf-8")
    result = SfBulkFlowOperator(fail_on_error=False, **task).execute(context())
    assert result["status"] == 400


def test_bad_arguments_fail_when_the_dag_is_parsed() -> None:
    from sfbulk.airflow.operators import SfBulkExtractOperator, SfBulkFlowOperator, SfBulkLoadOperator

    with pytest.raises(ValueError, match="api must be 1"):
        SfBulkLoadOperator(task_id="a", input_path="x.csv", object="Contact", api=3)
    with pytest.raises(ValueError, match="upsert needs external_id"):
        SfBulkLoadOperator(task_id="b", input_path="x.csv", object="Contact", operation="upsert")
    with pytest.raises(ValueError, match="pk_chunking is a Bulk API 1.0 setting"):
        SfBulkExtractOperator(
            task_id="c", soql="SELECT Id FROM Account", output_path="o.csv", api=2, pk_chunking=True
        )
    with pytest.raises(ValueError, match="exactly one of proxy or sequence"):
        SfBulkFlowOperator(task_id="d", configs="f.yaml")


def test_allow_row_errors_lets_the_task_succeed_with_the_error_file(
    emulator: Any, sfbulk_conn: str, tmp_path: Path
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from sfbulk.airflow.operators import SfBulkLoadOperator

    tag = f"ae{time.monotonic_ns()}-"
    src = tmp_path / "in.csv"
    src.write_text(
        f"FirstName,LastName,Email\nA,,{tag}0@example.com\nB,L,{tag}1@example.com\n", encoding="utf-8"
    )
    with pytest.raises(AirflowFailException, match=r"1 of 2 rows failed .*REQUIRED_FIELD_MISSING"):
        SfBulkLoadOperator(task_id="strict", input_path=str(src), object="Contact").execute(context("run-a"))
    result = SfBulkLoadOperator(
        task_id="lenient",
        input_path=str(src),
        object="Contact",
        allow_row_errors=True,
        success_path=str(tmp_path / "ok.csv"),
        error_path=str(tmp_path / "err.csv"),
    ).execute(context("run-b"))
    assert (result["succeeded"], result["failed"]) == (1, 1)
    assert result["reasons"][0][1] == 1 and "REQUIRED_FIELD_MISSING" in result["reasons"][0][0]
    assert "REQUIRED_FIELD_MISSING" in (tmp_path / "err.csv").read_text(encoding="utf-8")


def test_an_upsert_by_external_id_and_a_missing_input(
    emulator: Any, sfbulk_conn: str, tmp_path: Path
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from sfbulk.airflow.operators import SfBulkLoadOperator

    tag = f"up{time.monotonic_ns()}-"
    src = tmp_path / "in.csv"
    contacts(src, tag, 10)
    task = dict(
        task_id="upsert", input_path=str(src), object="Contact", operation="upsert", external_id="Email"
    )
    assert SfBulkLoadOperator(**task).execute(context("run-1"))["succeeded"] == 10
    assert SfBulkLoadOperator(**task).execute(context("run-2"))["succeeded"] == 10
    assert len(stored(emulator, tag)) == 10, "the second upsert updated the same records"
    with pytest.raises(AirflowFailException, match="input_path .*nope.csv does not exist"):
        SfBulkLoadOperator(**{**task, "input_path": str(tmp_path / "nope.csv")}).execute(context())
