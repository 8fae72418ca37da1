"""Fidelity proof for Bulk API 2.0: unmodified simple-salesforce ``sf.bulk2`` against the emulator.

simple-salesforce builds ``https://<instance>/services/data/v<ver>/jobs/`` URLs, so the emulator runs
with ``--tls`` and the client gets a requests Session trusting its CA, as in test_fidelity_clients.py.
Only documented arguments are passed (``wait``: the polling pause, shortened to keep the test fast).
"""

from __future__ import annotations

import csv
import io
import os
import re
from typing import TYPE_CHECKING

import pytest
import requests

from sfbulk.emulator.ids import normalize_id

if TYPE_CHECKING:  # imported by the fixture: every xdist worker collects this module, few run it
    from simple_salesforce import Salesforce

ID_RE = re.compile(r"^003[0-9A-Za-z]{15}$")
WAIT = 0.05


@pytest.fixture
def sf(emulator_factory) -> Salesforce:
    from simple_salesforce import Salesforce

    emu = emulator_factory(tls=True)
    assert emu.base_url.startswith("https://")
    session = requests.Session()
    session.verify = emu.ca_file
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment overrides verify (requests#3829)
    creds = emu.credentials
    token = session.post(
        f"{emu.base_url}/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "username": creds["username"],
            "password": creds["password"],
        },
        timeout=10,
    ).json()
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session)


def _records(pages) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for page in pages:
        out += csv.DictReader(io.StringIO(page, newline=""))
    return out


def test_simple_salesforce_bulk2_insert_upsert_delete_query_download(sf, tmp_path) -> None:
    data = [
        {"FirstName": f"Two{i}", "LastName": f"Bulk{i}", "Email": f"two{i}@example.com"} for i in range(2500)
    ]
    # batch_size splits the records into two jobs of at most 1,500 records
    inserted = sf.bulk2.Contact.insert(records=data, batch_size=1500, wait=WAIT)
    assert [r["numberRecordsTotal"] for r in inserted] == [1500, 1000]
    assert all(r["numberRecordsFailed"] == 0 for r in inserted)
    assert sum(r["numberRecordsProcessed"] for r in inserted) == 2500
    ids: dict[str, str] = {}
    for result in inserted:
        for row in csv.DictReader(io.StringIO(sf.bulk2.Contact.get_successful_records(result["job_id"]))):
            assert row["sf__Created"] == "true" and ID_RE.match(row["sf__Id"]) and normalize_id(row["sf__Id"])
            ids[row["Email"]] = row["sf__Id"]
    assert len(ids) == 2500 and len(set(ids.values())) == 2500

    # upsert on Id: ten updates and one insert (no Id); one bad row fails
    upserts = [{"Id": ids[f"two{i}@example.com"], "LastName": f"Upserted{i}"} for i in range(10)]
    upserts += [{"Id": "", "LastName": "BrandNew"}, {"Id": "003000000000000AAA", "LastName": "Ghost"}]
    upserted = sf.bulk2.Contact.upsert(records=upserts, external_id_field="Id", wait=WAIT)
    assert upserted[0]["numberRecordsProcessed"] == 12 and upserted[0]["numberRecordsFailed"] == 1
    job_id = upserted[0]["job_id"]
    created = [
        r["sf__Created"] for r in csv.DictReader(io.StringIO(sf.bulk2.Contact.get_successful_records(job_id)))
    ]
    assert sorted(created) == ["false"] * 10 + ["true"]
    all_results = sf.bulk2.Contact.get_all_ingest_records(job_id)
    assert [r["LastName"] for r in all_results["failedRecords"]] == ["Ghost"]
    assert all_results["unprocessedRecords"] == []

    deleted = sf.bulk2.Contact.delete(
        records=[{"Id": ids[f"two{i}@example.com"]} for i in range(2000, 2500)], wait=WAIT
    )
    assert deleted[0]["numberRecordsProcessed"] == 500 and deleted[0]["numberRecordsFailed"] == 0

    soql = "SELECT Id, LastName, Email FROM Contact WHERE LastName LIKE 'Bulk%' OR LastName LIKE 'Upserted%'"
    found = _records(sf.bulk2.Contact.query(soql, max_records=700, wait=WAIT))
    assert len(found) == 2000  # 2,500 inserted - 500 deleted
    assert {r["Id"] for r in found} == {ids[f"two{i}@example.com"] for i in range(2000)}
    assert sum(r["LastName"].startswith("Upserted") for r in found) == 10
    every = _records(sf.bulk2.Contact.query_all(soql, wait=WAIT))
    assert len(every) == 2500  # queryAll sees the deleted ones too

    results = sf.bulk2.Contact.download(soql, path=str(tmp_path), max_records=900, wait=WAIT)
    assert [r["number_of_records"] for r in results] == [900, 900, 200]
    assert [bool(r["locator"]) for r in results] == [True, True, False]  # "null" ends the chain
    downloaded = []
    for result in results:
        assert os.path.dirname(result["file"]) == str(tmp_path)
        with open(result["file"], encoding="utf-8", newline="") as f:
            downloaded += [row["Id"] for row in csv.DictReader(f)]
    assert sorted(downloaded) == sorted(r["Id"] for r in found)


def test_simple_salesforce_bulk2_csv_file_hard_delete_and_failed_job(sf, tmp_path) -> None:
    source = tmp_path / "accounts.csv"
    source.write_text(
        "Name;AccountNumber\n" + "".join(f"File {i};N{i}\n" for i in range(300)), encoding="utf-8"
    )
    loaded = sf.bulk2.Account.insert(csv_file=str(source), column_delimiter="SEMICOLON", wait=WAIT)
    assert loaded[0]["numberRecordsProcessed"] == 300 and loaded[0]["numberRecordsFailed"] == 0
    target = tmp_path / "success.csv"
    sf.bulk2.Account.get_successful_records(loaded[0]["job_id"], file=str(target))
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[0] == '"sf__Id";"sf__Created";"Name";"AccountNumber"' and len(lines) == 301
    ids = [line.split(";")[0].strip('"') for line in lines[1:]]
    gone = sf.bulk2.Account.hard_delete(records=[{"Id": i} for i in ids], wait=WAIT)
    assert gone[0]["numberRecordsProcessed"] == 300 and gone[0]["numberRecordsFailed"] == 0
    assert (
        _records(sf.bulk2.Account.query("SELECT Id FROM Account WHERE Name LIKE 'File %'", wait=WAIT)) == []
    )

    from simple_salesforce.exceptions import SalesforceOperationError

    with pytest.raises(SalesforceOperationError, match="Field name not found : Nope__c"):
        sf.bulk2.Account.insert(records=[{"Name": "x", "Nope__c": "y"}], wait=WAIT)
