"""Bulk API 2.0 query jobs over real HTTP: results with locator/maxRecords, gzip, resultPages, states, errors."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from bulk2_helpers import Bulk2, error, rows  # type: ignore[import-not-found]
from helpers import Bulk  # type: ignore[import-not-found]


@pytest.fixture(scope="module")
def loaded(emulator):
    """1,234 Lead records written through Bulk 1.0 (their ids), the 2.0 client reads them."""
    token = emulator.issue_token()
    v1 = Bulk(emulator.base_url, token)
    job = v1.create_job("insert", "Lead")
    data = "FirstName,LastName,Company,Description\n" + "".join(
        f'Q{i},Pager{i:04d},Co{i % 7},"line one\nline ""two"", {i}"\n' for i in range(1234)
    )
    batch = v1.add_batch(job, data.encode())
    assert v1.wait(job, batch)["state"] == "Completed"
    result = rows(v1.get(f"/job/{job}/batch/{batch}/result").text)
    return Bulk2(emulator.base_url, token), [r["Id"] for r in result]


SOQL = "SELECT Id, LastName, Description FROM Lead WHERE LastName LIKE 'Pager%' ORDER BY LastName"


def _page(bulk2: Bulk2, job_id: str, **params) -> requests.Response:
    resp = bulk2.request("GET", f"/query/{job_id}/results", params=params)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"] == "text/csv; charset=UTF-8"
    return resp


def test_locator_chain_pages_cover_every_record_once(loaded) -> None:
    bulk2, ids = loaded
    created = bulk2.create("query", operation="query", query=SOQL)
    assert created["state"] == "UploadComplete" and "contentUrl" not in created
    info = bulk2.wait(created["id"], "query")
    assert (info["state"], info["jobType"], info["numberRecordsProcessed"]) == (
        "JobComplete",
        "V2Query",
        1234,
    )
    assert info["isPkChunkingSupported"] is True and info["retries"] == 0 and info["object"] == "Lead"
    got, locators, counts, locator = [], [], [], None
    while True:
        params = {"maxRecords": 500, **({"locator": locator} if locator else {})}
        resp = _page(bulk2, info["id"], **params)
        assert resp.text.startswith('"Id","LastName","Description"\n')
        page = rows(resp.text)
        counts.append(int(resp.headers["Sforce-NumberOfRecords"]))
        assert counts[-1] == len(page)
        got += page
        locator = resp.headers["Sforce-Locator"]
        locators.append(locator)
        if locator == "null":
            break
    assert counts == [500, 500, 234] and locators == ["NTAw", "MTAwMA", "null"]  # base64 of the offset
    assert [r["Id"] for r in got] == [i for _, i in sorted((f"Pager{n:04d}", i) for n, i in enumerate(ids))]
    assert got[7]["Description"] == 'line one\nline "two", 7'
    # a locator may be used again, in any order
    again = rows(_page(bulk2, info["id"], locator="NTAw", maxRecords=3).text)
    assert again == got[500:503]
    whole = _page(bulk2, info["id"])  # no maxRecords: the server's page size (100,000 rows here)
    assert whole.headers["Sforce-Locator"] == "null" and len(rows(whole.text)) == 1234


def test_gzip_only_when_asked(loaded) -> None:
    bulk2, _ = loaded
    info = bulk2.query(SOQL)
    url = f"{bulk2.base}/query/{info['id']}/results"
    zipped = bulk2.http.get(url, headers={"Accept-Encoding": "gzip"}, params={"maxRecords": 10}, stream=True)
    assert zipped.headers["Content-Encoding"] == "gzip"
    raw = zipped.raw.read(decode_content=False)
    assert raw[:2] == b"\x1f\x8b"
    plain = bulk2.http.get(url, headers={"Accept-Encoding": "identity"}, params={"maxRecords": 10})
    assert "Content-Encoding" not in plain.headers
    import gzip

    assert gzip.decompress(raw) == plain.content
    assert len(rows(plain.text)) == 10


def test_result_pages_for_parallel_download(loaded) -> None:
    bulk2, ids = loaded
    info = bulk2.query(SOQL)
    resp = bulk2.request("GET", f"/query/{info['id']}/resultPages", params={"maxRecords": 300})
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["done"] is True and doc["nextRecordsUrl"] is None
    urls = [p["resultUrl"] for p in doc["resultPages"]]
    assert (
        len(urls) == 5 and urls[0] == f"/services/data/v62.0/jobs/query/{info['id']}/results?maxRecords=300"
    )
    origin = bulk2.base.split("/services/")[0]
    with ThreadPoolExecutor(4) as pool:
        pages = list(pool.map(lambda u: bulk2.http.get(origin + u, timeout=30), urls))
    assert [int(p.headers["Sforce-NumberOfRecords"]) for p in pages] == [300, 300, 300, 300, 34]
    assert sorted(r["Id"] for p in pages for r in rows(p.text)) == sorted(ids)

    # more pages than one answer lists: follow nextRecordsUrl
    first = bulk2.request("GET", f"/query/{info['id']}/resultPages", params={"maxRecords": 1}).json()
    assert len(first["resultPages"]) == 1000 and first["done"] is False
    rest = bulk2.http.get(origin + first["nextRecordsUrl"], timeout=30).json()
    assert len(rest["resultPages"]) == 234 and rest["done"] is True
    last = bulk2.http.get(origin + rest["resultPages"][-1]["resultUrl"], timeout=30)
    assert last.headers["Sforce-Locator"] == "null" and len(rows(last.text)) == 1

    old = requests.get(
        origin + f"/services/data/v57.0/jobs/query/{info['id']}/resultPages",
        headers=bulk2.http.headers,
        timeout=10,
    )
    assert error(old)[:2] == (404, "NOT_FOUND")  # from API 58.0


def test_delimiters_line_endings_query_all_and_empty_results(loaded) -> None:
    bulk2, ids = loaded
    info = bulk2.query(
        "SELECT Id, LastName, IsDeleted, NumberOfEmployees FROM Lead WHERE LastName = 'Pager0003'",
        columnDelimiter="PIPE",
        lineEnding="CRLF",
    )
    assert (info["columnDelimiter"], info["lineEnding"]) == ("PIPE", "CRLF")
    text = _page(bulk2, info["id"]).text
    assert text == f'"Id"|"LastName"|"IsDeleted"|"NumberOfEmployees"\r\n"{ids[3]}"|"Pager0003"|"false"|""\r\n'

    delete = bulk2.load(f"Id\n{ids[5]}\n", object="Lead", operation="delete")
    assert delete["numberRecordsFailed"] == 0
    soql = "SELECT Id FROM Lead WHERE LastName = 'Pager0005'"
    live = _page(bulk2, bulk2.query(soql)["id"])
    assert (live.headers["Sforce-NumberOfRecords"], live.headers["Sforce-Locator"], live.content) == (
        "0",
        "null",
        b"",
    )
    every = _page(bulk2, bulk2.query(soql, "queryAll")["id"])
    assert rows(every.text) == [{"Id": ids[5]}]


def test_queries_fail_at_creation_with_salesforce_codes(loaded) -> None:
    bulk2, _ = loaded
    for soql, code in [
        ("SELECT FROM Lead", "MALFORMED_QUERY"),
        ("SELECT Nope__c FROM Lead", "INVALID_FIELD"),
        ("SELECT Id FROM Nope__c", "INVALID_TYPE"),
    ]:
        status, got, message = error(
            bulk2.request("POST", "/query", json={"operation": "query", "query": soql})
        )
        assert (status, got) == (400, code) and message, soql
    for doc in (
        {"operation": "query"},
        {"operation": "insert", "query": "SELECT Id FROM Lead"},
        {"operation": "query", "query": "SELECT Id FROM Lead", "object": "Lead"},
    ):
        assert error(bulk2.request("POST", "/query", json=doc))[0] == 400


def test_states_abort_delete_and_early_results(emulator_factory) -> None:
    emu = emulator_factory(processing_delay_ms=400)
    bulk2 = Bulk2(emu.base_url, emu.issue_token())
    job = bulk2.create("query", operation="query", query="SELECT Id FROM Account")
    status, code, _ = error(bulk2.request("GET", f"/query/{job['id']}/results"))
    assert (status, code) == (400, "INVALIDJOBSTATE")
    assert error(bulk2.request("DELETE", f"/query/{job['id']}")) == (
        400,
        "API_ERROR",
        "Error encountered when deleting the job because the job is not terminated",
    )
    deadline = time.monotonic() + 10
    while bulk2.info(job["id"], "query")["state"] != "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    aborted = bulk2.patch(job["id"], "Aborted", "query")
    assert aborted.status_code == 200 and aborted.json()["state"] == "Aborted"
    emu.wait_idle(10)
    assert bulk2.info(job["id"], "query")["state"] == "Aborted"
    assert error(bulk2.request("GET", f"/query/{job['id']}/results"))[:2] == (400, "INVALIDJOBSTATE")
    assert bulk2.request("DELETE", f"/query/{job['id']}").status_code == 204
    assert error(bulk2.request("GET", f"/query/{job['id']}"))[:2] == (404, "NOT_FOUND")

    done = bulk2.query("SELECT Id FROM Account")
    assert error(bulk2.patch(done["id"], "Aborted", "query")) == (
        400,
        "INVALIDJOBSTATE",
        "Aborting already Completed Job not allowed",
    )
    assert error(bulk2.patch(done["id"], "UploadComplete", "query"))[:2] == (400, "INVALIDJOBSTATE")
    other_version = requests.get(
        f"{emu.base_url}/services/data/v61.0/jobs/query/{done['id']}/results",
        headers=bulk2.http.headers,
        timeout=10,
    )
    assert error(other_version)[:2] == (409, "INVALIDVERSION")
    for params in ({"maxRecords": "0"}, {"maxRecords": "many"}, {"locator": "%%%"}, {"locator": "OTk5OQ"}):
        assert error(bulk2.request("GET", f"/query/{done['id']}/results", params=params))[0] == 400, params


def test_bulk2_ingest_is_visible_to_a_bulk2_query_of_the_same_store(emulator) -> None:
    bulk2 = Bulk2(emulator.base_url, emulator.issue_token())
    load = bulk2.load("Name,NumberOfEmployees\nB2Visible,42\n", object="Account", operation="insert")
    new_id = rows(bulk2.results(load["id"], "successfulResults"))[0]["sf__Id"]
    info = bulk2.query("SELECT Id, Name, NumberOfEmployees FROM Account WHERE Name = 'B2Visible'")
    assert rows(_page(bulk2, info["id"]).text) == [
        {"Id": new_id, "Name": "B2Visible", "NumberOfEmployees": "42"}
    ]
