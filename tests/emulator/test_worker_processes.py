"""Batches processed in worker processes (the CLI's default) behave as in worker threads."""

from __future__ import annotations

import csv
import io

import pytest
from helpers import Bulk, parse  # type: ignore[import-not-found]

pytestmark = pytest.mark.slow  # starts worker interpreters


@pytest.fixture(scope="module")
def process_emulator():
    from sfbulk.emulator import start_emulator

    emu = start_emulator(port=0, worker_processes=True, workers=2)
    try:
        yield emu
    finally:
        emu.stop()


def test_ingest_pk_chunked_query_and_serial_jobs_in_worker_processes(process_emulator) -> None:
    bulk = Bulk(process_emulator.base_url, process_emulator.issue_token())
    rows = "".join(f"Proc{i},Worker,proc{i}@example.com\n" for i in range(2500))
    job = bulk.create_job("insert", "Contact", concurrencyMode="Serial")
    batches = [bulk.add_batch(job, ("FirstName,LastName,Email\n" + rows).encode()) for _ in range(2)]
    bad = bulk.add_batch(job, b"LastName,Email\nOnlyOne,not-an-email\n")
    infos = [bulk.wait(job, b) for b in [*batches, bad]]
    assert [i["state"] for i in infos] == ["Completed"] * 3
    assert [int(i["numberRecordsProcessed"]) for i in infos] == [2500, 2500, 1]
    assert int(infos[2]["numberRecordsFailed"]) == 1  # per-row errors still work (the row path)
    results = bulk.get(f"/job/{job}/batch/{batches[0]}/result").text
    assert results.count('"true","true",""') == 2500

    # PK chunking: the chunk batches are created inside a worker and queued by the parent.
    resp = bulk.post(
        "/job",
        '<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
        "<operation>query</operation><object>Contact</object><contentType>CSV</contentType></jobInfo>",
        **{"Sforce-Enable-PKChunking": "chunkSize=1000"},
    )
    assert resp.status_code == 201, resp.text
    query = parse(resp.content)["id"]
    parent = bulk.add_batch(query, b"SELECT Id, Email FROM Contact WHERE LastName = 'Worker'")
    assert bulk.wait(query, parent)["state"] == "NotProcessed"
    listing = bulk.get(f"/job/{query}/batch").content
    chunk_ids = [b for b in parse_list(listing) if b != parent]
    assert len(chunk_ids) >= 5
    emails: list[str] = []
    for chunk in chunk_ids:
        assert bulk.wait(query, chunk)["state"] == "Completed"
        for result_id in parse_results(bulk.get(f"/job/{query}/batch/{chunk}/result").content):
            data = bulk.get(f"/job/{query}/batch/{chunk}/result/{result_id}").text
            emails.extend(row["Email"] for row in csv.DictReader(io.StringIO(data)))
    assert len(emails) == 5000  # every inserted row extracted once across the chunks ...
    assert len(set(emails)) == 2500  # ... and both batches carried the same 2,500 emails
    assert process_emulator.wait_idle(10)


def parse_list(body: bytes) -> list[str]:
    from lxml import etree

    ns = {"a": "http://www.force.com/2009/06/asyncapi/dataload"}
    return [el.text for el in etree.fromstring(body).findall("a:batchInfo/a:id", ns)]


def parse_results(body: bytes) -> list[str]:
    from lxml import etree

    return [el.text for el in etree.fromstring(body) if el.text]
