"""Fidelity proof: unmodified third-party Bulk API clients run against the emulator.

* salesforce-bulk 2.2.0 (XML jobs, CSV batches, plain http host);
* simple-salesforce SFBulkHandler (Bulk 1.0 JSON jobs, https hard-coded: a --tls emulator and a
  requests Session that trusts its CA). Only simple-salesforce's polling pause is shortened.
"""

from __future__ import annotations

import csv
import io
import re
import time

import pytest
import requests

from sfbulk.emulator.ids import normalize_id

# The clients are imported in the tests that use them: every xdist worker collects this module
# (0.13 s per client library), and only one runs each test.

ID_RE = re.compile(r"^003[0-9A-Za-z]{15}$")


@pytest.mark.slow
def test_salesforce_bulk_inserts_9000_contacts_in_3_batches_and_queries_them(emulator_factory):
    from salesforce_bulk import CsvDictsAdapter, SalesforceBulk

    emu = emulator_factory()
    bulk = SalesforceBulk(sessionId=emu.issue_token(), host=emu.base_url)
    job = bulk.create_insert_job("Contact", contentType="CSV")
    rows = [
        {"FirstName": f"First{i}", "LastName": f"Last{i}", "Email": f"c{i}@example.com"} for i in range(9_000)
    ]
    batches = [
        bulk.post_batch(job, CsvDictsAdapter(iter(rows[start : start + 3000])))
        for start in range(0, 9_000, 3000)
    ]
    assert len(batches) == 3
    for batch in batches:
        bulk.wait_for_batch(job, batch, timeout=60, sleep_interval=0.1)
    bulk.close_job(job)
    ids = []
    for batch in batches:
        results = bulk.get_batch_results(batch, job)
        assert all(r.success == "true" and r.created == "true" and r.error == "" for r in results)
        ids.extend(r.id for r in results)
    assert len(ids) == 9_000 and len(set(ids)) == 9_000
    assert all(ID_RE.match(i) and normalize_id(i) == i for i in ids)
    assert bulk.job_status(job)["numberRecordsProcessed"] == "9000"

    qjob = bulk.create_query_job("Contact", contentType="CSV")
    qbatch = bulk.query(qjob, "SELECT Id, LastName, Email FROM Contact WHERE Email LIKE '%@example.com'")
    while not bulk.is_batch_done(qbatch, qjob):
        time.sleep(0.05)
    bulk.close_job(qjob)
    found = {}
    for result in bulk.get_all_results_for_query_batch(qbatch, qjob):
        for rec in csv.DictReader(io.TextIOWrapper(result, encoding="utf-8")):
            found[rec["Id"]] = rec
    assert set(found) == set(ids)
    assert found[ids[0]]["LastName"] == "Last0" and found[ids[-1]]["Email"] == "c8999@example.com"


def test_salesforce_bulk_pk_chunking_and_json_jobs(emulator_factory):
    from salesforce_bulk import CsvDictsAdapter, SalesforceBulk

    emu = emulator_factory()
    bulk = SalesforceBulk(sessionId=emu.issue_token(), host=emu.base_url)
    job = bulk.create_insert_job("Account", contentType="CSV")
    batch = bulk.post_batch(job, CsvDictsAdapter(iter([{"Name": f"Acc{i}"} for i in range(250)])))
    bulk.wait_for_batch(job, batch, sleep_interval=0.05)
    bulk.close_job(job)

    soql = "SELECT Id, Name FROM Account"
    qjob = bulk.create_query_job("Account", contentType="CSV", pk_chunking=100)
    original = bulk.query(qjob, soql)
    deadline = time.monotonic() + 20
    while True:
        batches = bulk.get_batch_list(qjob)
        chunks = [b for b in batches if b["id"] != original]
        if chunks and all(b["state"] == "Completed" for b in chunks):
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert {b["state"] for b in batches if b["id"] == original} == {"NotProcessed"}
    assert len(chunks) == 3
    names = set()
    for chunk in chunks:
        assert bulk.get_query_batch_request(chunk["id"], qjob).startswith(soql)
        for result in bulk.get_all_results_for_query_batch(chunk["id"], qjob):
            names.update(rec["Name"] for rec in csv.DictReader(io.TextIOWrapper(result, encoding="utf-8")))
    assert names == {f"Acc{i}" for i in range(250)}
    status = bulk.job_status(qjob)
    assert status["numberBatchesTotal"] == "3" and status["numberRecordsProcessed"] == "250"

    # JSON jobs: salesforce-bulk sends application/xml on GETs and expects JSON back
    jjob = bulk.create_insert_job("Account", contentType="JSON")
    jbatch = bulk.post_batch(jjob, '[{"Name": "Json1"}, {"Name": "Json2"}]')
    bulk.wait_for_batch(jjob, jbatch, sleep_interval=0.05)
    results = bulk.get_batch_results(jbatch, jjob)
    assert [r.success for r in results] == [True, True]


def test_simple_salesforce_bulk_round_trips_over_tls(emulator_factory, monkeypatch):
    import simple_salesforce.bulk as ss_bulk
    from simple_salesforce import Salesforce

    monkeypatch.setattr(ss_bulk, "sleep", lambda seconds: time.sleep(0.05))
    emu = emulator_factory(tls=True)
    assert emu.base_url.startswith("https://")
    session = requests.Session()
    session.verify = emu.ca_file
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment overrides verify (requests#3829)
    token = session.post(
        f"{emu.base_url}/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": emu.credentials["client_id"],
            "client_secret": emu.credentials["client_secret"],
            "username": emu.credentials["username"],
            "password": emu.credentials["password"],
        },
        timeout=10,
    ).json()
    sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session)

    data = [{"LastName": f"Simple{i}", "Email": f"s{i}@example.com"} for i in range(30)]
    inserted = sf.bulk.Contact.insert(data, batch_size=10, use_serial=True)
    assert len(inserted) == 30 and all(r["success"] and r["created"] for r in inserted)
    ids = [r["id"] for r in inserted]

    updated = sf.bulk.Contact.update([{"Id": i, "Title": "Updated"} for i in ids[:10]])
    assert all(r["success"] and not r["created"] for r in updated)

    records = sf.bulk.Contact.query("SELECT Id, LastName, Title FROM Contact WHERE Title = 'Updated'")
    assert sorted(r["Id"] for r in records) == sorted(ids[:10])
    assert records[0]["attributes"]["type"] == "Contact"

    upserted = sf.bulk.Contact.upsert(
        [{"Email": "s0@example.com", "LastName": "Renamed"}, {"Email": "new@example.com", "LastName": "New"}],
        "Email",
    )
    assert [r["created"] for r in upserted] == [False, True]

    deleted = sf.bulk.Contact.delete([{"Id": i} for i in ids[20:]])
    assert all(r["success"] for r in deleted)
    remaining = sf.bulk.Contact.query("SELECT Id FROM Contact WHERE LastName LIKE 'Simple%'")
    assert len(remaining) == 19  # 30 - 10 deleted - 1 renamed
    every = sf.bulk.Contact.query_all("SELECT Id FROM Contact WHERE LastName LIKE 'Simple%'")
    assert len(every) == 29
