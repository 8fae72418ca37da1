"""Query result files (split, streamed, formats), PK chunking errors, fault injection and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.emulator.helpers import Bulk, parse


def _load_accounts(bulk: Bulk, count: int, prefix: str) -> None:
    job_id = bulk.create_job("insert", "Account")
    body = "Name,NumberOfEmployees,Rating\n" + "".join(
        f"{prefix}{i:05d},{i},{'Hot' if i % 2 else ''}\n" for i in range(count)
    )
    assert bulk.wait(job_id, bulk.add_batch(job_id, body))["state"] == "Completed"


def test_query_results_split_into_files_and_formats(emulator_factory):
    emu = emulator_factory(rows_per_result_file=1000)
    bulk = Bulk(emu.base_url, emu.issue_token())
    _load_accounts(bulk, 2500, "Q")
    job_id = bulk.create_job("query", "Account")
    soql = (
        "SELECT Id, Name, NumberOfEmployees FROM Account WHERE Name LIKE 'Q%' AND NumberOfEmployees >= 0 "
        "ORDER BY Name"
    )
    batch_id = bulk.add_batch(job_id, soql)
    info = bulk.wait(job_id, batch_id)
    assert info["state"] == "Completed" and info["numberRecordsProcessed"] == "2500"
    listing = bulk.get(f"/job/{job_id}/batch/{batch_id}/result")
    result_ids = [r.split("<")[0] for r in listing.text.split("<result>")[1:]]
    assert len(result_ids) == 3 and all(r.startswith("752") and len(r) == 15 for r in result_ids)
    names = []
    for rid in result_ids:
        resp = bulk.http.get(
            f"{bulk.base}/job/{job_id}/batch/{batch_id}/result/{rid}",
            headers=bulk.headers(),
            stream=True,
            timeout=30,
        )
        assert resp.headers["Content-Type"] == "text/csv"
        lines = resp.text.splitlines()
        assert lines[0] == '"Id","Name","NumberOfEmployees"'
        names.extend(line.split(",")[1].strip('"') for line in lines[1:])
    assert names == [f"Q{i:05d}" for i in range(2500)]
    # the batch request is the SOQL as sent
    assert bulk.get(f"/job/{job_id}/batch/{batch_id}/request").text == soql

    # JSON query job: records with attributes, numbers as numbers, nulls as null
    job = bulk.post(
        "/job",
        json.dumps({"operation": "query", "object": "Account", "contentType": "JSON"}),
        "application/json",
    ).json()
    batch = bulk.post(
        f"/job/{job['id']}/batch",
        "SELECT Name, Rating FROM Account WHERE Name IN ('Q00001', 'Q00002') ORDER BY Name",
        "application/json",
    ).json()
    bulk.wait(job["id"], batch["id"], as_json=True)
    rid = bulk.get(f"/job/{job['id']}/batch/{batch['id']}/result").json()[0]
    records = bulk.get(f"/job/{job['id']}/batch/{batch['id']}/result/{rid}").json()
    assert [r["Rating"] for r in records] == ["Hot", None]
    assert records[0]["attributes"]["type"] == "Account"

    # an empty CSV result says so, as Salesforce does
    job_id = bulk.create_job("query", "Account")
    batch_id = bulk.add_batch(job_id, "SELECT Id FROM Account WHERE Name = 'nobody'")
    bulk.wait(job_id, batch_id)
    rid = parse(bulk.get(f"/job/{job_id}/batch/{batch_id}/result").content)["result"]
    assert bulk.get(f"/job/{job_id}/batch/{batch_id}/result/{rid}").text == "Records not found for this query"


@pytest.mark.parametrize(
    "soql, message",
    [
        (
            "SELECT Id, Bogus FROM Account",
            "InvalidBatch : Failed to process query: INVALID_FIELD: No such column "
            "'Bogus' on entity 'Account'.",
        ),
        ("SELECT Name, COUNT(Id) FROM Account GROUP BY Name", "InvalidBatch : Failed to process query: "),
        (
            "SELECT Id FROM Contact",
            "InvalidBatch : Failed to process query: the query object Contact does not match",
        ),
    ],
)
def test_bad_soql_fails_the_batch(emulator, access_token, soql, message):
    bulk = Bulk(emulator.base_url, access_token)
    job_id = bulk.create_job("query", "Account")
    info = bulk.wait(job_id, bulk.add_batch(job_id, soql))
    assert info["state"] == "Failed" and info["stateMessage"].startswith(message)


def test_pk_chunking_ranges_cover_every_row_once(emulator_factory):
    emu = emulator_factory()
    bulk = Bulk(emu.base_url, emu.issue_token())
    _load_accounts(bulk, 1050, "P")
    resp = bulk.post(
        "/job",
        '<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload"><operation>query'
        "</operation><object>Account</object><contentType>CSV</contentType></jobInfo>",
        **{"Sforce-Enable-PKChunking": "TRUE; chunkSize=250;"},
    )
    job_id = parse(resp.content)["id"]
    original = bulk.add_batch(job_id, "SELECT Id, Name FROM Account WHERE Rating = 'Hot' OR Rating = null")
    assert bulk.wait(job_id, original)["state"] == "NotProcessed"
    emu.wait_idle(20)
    listing = bulk.get(f"/job/{job_id}/batch").text
    chunk_ids = [b.split("<")[0] for b in listing.split("<id>")[1:] if not b.startswith(original)]
    assert len(chunk_ids) == 5
    seen = []
    for chunk in chunk_ids:
        assert bulk.wait(job_id, chunk)["state"] == "Completed"
        request = bulk.get(f"/job/{job_id}/batch/{chunk}/request").text
        assert request.startswith(
            "SELECT Id, Name FROM Account WHERE (Rating = 'Hot' OR Rating = null) AND Id >= "
        )
        for rid in [
            r.split("<")[0]
            for r in bulk.get(f"/job/{job_id}/batch/{chunk}/result").text.split("<result>")[1:]
        ]:
            text = bulk.get(f"/job/{job_id}/batch/{chunk}/result/{rid}").text
            seen.extend(line.split(",")[1] for line in text.splitlines()[1:])
    assert sorted(seen) == sorted(f'"P{i:05d}"' for i in range(1050))
    job = parse(bulk.get(f"/job/{job_id}").content)
    assert job["numberBatchesTotal"] == "5" and job["numberBatchesCompleted"] == "5"


def test_fault_injection_503_resets_latency_and_oauth_spared(emulator_factory):
    emu = emulator_factory()
    token = emu.issue_token()
    url = f"{emu.base_url}/services/async/62.0/job/INVALID"
    emu.faults.configure(error_rate=1.0, seed=1)
    resp = requests.get(url, headers={"X-SFDC-Session": token}, timeout=10)
    assert resp.status_code == 503 and "<exceptionCode>" in resp.text
    c = emu.credentials
    resp = requests.post(
        f"{emu.base_url}/services/oauth2/token",
        timeout=10,
        data={
            "grant_type": "refresh_token",
            "client_id": c["client_id"],
            "refresh_token": c["refresh_token"],
        },
    )
    assert resp.status_code == 200  # the token endpoint is spared unless asked
    emu.faults.configure(reset_rate=1.0, seed=2)
    for _ in range(4):  # both "before" and "after handling" cuts end in a transport error, never a 500
        with pytest.raises(requests.ConnectionError):
            requests.get(url, headers={"X-SFDC-Session": token}, timeout=10)
    emu.faults.configure(latency_ms=150)
    started = time.monotonic()
    assert requests.get(url, headers={"X-SFDC-Session": token}, timeout=10).status_code == 400
    assert time.monotonic() - started >= 0.15
    emu.faults.configure(error_rate=0.3, reset_rate=0.2, seed=7)
    outcomes = {"ok": 0, "503": 0, "reset": 0}
    for _ in range(60):
        try:
            status = requests.get(url, headers={"X-SFDC-Session": token}, timeout=10).status_code
            outcomes["503" if status == 503 else "ok"] += 1
        except requests.ConnectionError:
            outcomes["reset"] += 1
    assert all(outcomes.values()), outcomes
    emu.faults.reset()
    assert requests.get(url, headers={"X-SFDC-Session": token}, timeout=10).status_code == 400
    with pytest.raises(ValueError):
        emu.faults.configure(error_rate=1.5)


def test_cli_prints_json_and_stops_on_sigterm(tmp_path):
    db = tmp_path / "emu.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sfbulk",
            "emulator",
            "--port",
            "0",
            "--json",
            "--db",
            str(db),
            "--token-ttl",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(proc.stdout.readline())
        assert set(info) == {
            "base_url",
            "client_id",
            "client_secret",
            "refresh_token",
            "username",
            "password",
            "client_credentials_user",
            "jwt_private_key_file",
            "jwt_certificate_file",
            "jwt_users",
            "rotate_refresh_tokens",
        }
        assert info["base_url"].startswith("http://127.0.0.1:")
        resp = requests.post(
            f"{info['base_url']}/services/oauth2/token",
            timeout=10,
            data={
                "grant_type": "refresh_token",
                "client_id": info["client_id"],
                "refresh_token": info["refresh_token"],
            },
        )
        assert resp.json()["instance_url"] == info["base_url"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert db.exists() and os.path.getsize(db) > 0
