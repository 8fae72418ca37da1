"""An Airflow DAG with the sfbulk provider: extract, transform, load, then run an sfbulk flow.

Each task hands the next one *file paths* through XCom, never rows:

    extract_accounts   SOQL -> accounts.csv                      (SfBulkExtractOperator)
    build_contacts     accounts.csv -> contacts.csv, N contacts   (PythonOperator)
    load_contacts      contacts.csv -> Salesforce; success/error CSVs next to it (SfBulkLoadOperator)
    check_job          the getJob proxy of examples/flows.yaml, with the load's job id (SfBulkFlowOperator)

The connection is ``sfbulk_default`` (docs/airflow.md: e.g. an ``AIRFLOW_CONN_SFBULK_DEFAULT``
variable in JSON form). Files go below the ``work_dir`` param, one folder per run; a retried load
resumes its job from the journal next to its success file.
"""

from __future__ import annotations

import csv
import os
from datetime import datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param

from sfbulk.airflow.operators import SfBulkExtractOperator, SfBulkFlowOperator, SfBulkLoadOperator

FLOWS = os.path.join(os.path.dirname(os.path.realpath(__file__)), os.pardir, "flows.yaml")
RUN_DIR = "{{ params.work_dir }}/{{ run_id | replace(':', '_') | replace('+', '_') }}"


def build_contacts(accounts_csv: str, contacts_csv: str, rows: int | str, domain: str) -> dict[str, Any]:
    """``rows`` contacts spread over the extracted accounts (file in, file out: only paths in XCom)."""
    with open(accounts_csv, encoding="utf-8", newline="") as fh:
        accounts = [row["Id"] for row in csv.DictReader(fh)]
    if not accounts:
        raise ValueError(f"{accounts_csv} has no accounts to attach contacts to")
    with open(contacts_csv, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["FirstName", "LastName", "Email", "AccountId"])
        for i in range(int(rows)):
            writer.writerow([f"First{i}", f"Last{i}", f"c{i}@{domain}", accounts[i % len(accounts)]])
    return {"path": contacts_csv, "rows": int(rows), "accounts": len(accounts)}


with DAG(
    dag_id="sfbulk_contacts",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={
        "work_dir": Param("/tmp/sfbulk-airflow-example", type="string"),
        "account_prefix": Param("Airflow", type="string", description="the accounts that get contacts"),
        "rows": Param(50_000, type="integer", minimum=1),
        "domain": Param("example.com", type="string"),
    },
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},  # a retry resumes a load
    tags=["sfbulk"],
) as dag:
    extract_accounts = SfBulkExtractOperator(
        task_id="extract_accounts",
        soql="SELECT Id, Name FROM Account WHERE Name LIKE '{{ params.account_prefix }}%'",
        output_path=RUN_DIR + "/accounts.csv",
    )
    contacts = PythonOperator(
        task_id="build_contacts",
        python_callable=build_contacts,
        op_kwargs={
            "accounts_csv": "{{ ti.xcom_pull(task_ids='extract_accounts')['output_path'] }}",
            "contacts_csv": RUN_DIR + "/contacts.csv",
            "rows": "{{ params.rows }}",
            "domain": "{{ params.domain }}",
        },
    )
    load_contacts = SfBulkLoadOperator(
        task_id="load_contacts",
        input_path="{{ ti.xcom_pull(task_ids='build_contacts')['path'] }}",
        object="Contact",
        operation="insert",
        concurrency=4,
    )
    check_job = SfBulkFlowOperator(
        task_id="check_job",
        configs=FLOWS,
        proxy="getJob",
        payload="<getJob><jobId>{{ ti.xcom_pull(task_ids='load_contacts')['job_id'] }}</jobId></getJob>",
        response_path=RUN_DIR + "/job.xml",
    )
    extract_accounts >> contacts >> load_contacts >> check_job
