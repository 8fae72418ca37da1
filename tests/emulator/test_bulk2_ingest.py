"""Bulk API 2.0 ingest jobs over real HTTP: create, upload, close, results, states, list, delete, errors."""

from __future__ import annotations

import gzip
import time

import pytest
from bulk2_helpers import Bulk2, error, rows  # type: ignore[import-not-found]
from helpers import Bulk  # type: ignore[import-not-found]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfbulk.emulator.ids import normalize_id


@pytest.fixture
def bulk2(emulator) -> Bulk2:
    return Bulk2(emulator.base_url, emulator.issue_token())


def _contacts(n: int, tag: str, start: int = 0) -> str:
    return "FirstName,LastName,Email\n" + "".join(
        f"{tag}{i},Last{i},{tag.lower()}{i}@example.com\n" for i in range(start, start + n)
    )


def test_insert_over_several_internal_batches_with_results_and_counters(bulk2) -> None:
    data = _contacts(10_500, "Ins") + 'Bad,"",not-an-email\n' + 'Quote,"O""Brien, Jr",\n'
    job = bulk2.create(object="Contact", operation="insert")
    assert (
        job["state"] == "Open" and job["contentUrl"] == f"services/data/v62.0/jobs/ingest/{job['id']}/batches"
    )
    assert (job["lineEnding"], job["columnDelimiter"], job["contentType"]) == ("LF", "COMMA", "CSV")
    assert bulk2.upload(job["id"], data).status_code == 201
    closed = bulk2.patch(job["id"], "UploadComplete")
    assert closed.status_code == 200 and closed.json()["state"] == "UploadComplete"
    info = bulk2.wait(job["id"])
    assert info["state"] == "JobComplete" and info["jobType"] == "V2Ingest"
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"], info["retries"]) == (10_502, 1, 0)
    assert (
        info["totalProcessingTime"] >= info["apiActiveProcessingTime"] >= 0
        and info["apexProcessingTime"] == 0
    )
    assert "errorMessage" not in info

    success = bulk2.results(job["id"], "successfulResults")
    assert success.splitlines()[0] == '"sf__Id","sf__Created","FirstName","LastName","Email"'
    done = rows(success)
    assert len(done) == 10_501
    assert all(r["sf__Created"] == "true" and normalize_id(r["sf__Id"]) == r["sf__Id"] for r in done)
    assert len({r["sf__Id"] for r in done}) == 10_501
    by_name = {r["FirstName"]: r for r in done}
    assert by_name["Ins10499"]["Email"] == "ins10499@example.com"
    assert by_name["Quote"]["LastName"] == 'O"Brien, Jr' and by_name["Quote"]["Email"] == ""

    failed = rows(bulk2.results(job["id"], "failedResults/"))  # the guide's URLs end with a slash
    assert [(r["sf__Id"], r["FirstName"], r["Email"]) for r in failed] == [("", "Bad", "not-an-email")]
    assert failed[0]["sf__Error"].startswith("INVALID_EMAIL_ADDRESS:")
    assert bulk2.results(job["id"], "unprocessedrecords") == '"FirstName","LastName","Email"\n'
    assert (
        bulk2.results(job["id"], "unprocessedRecords") == '"FirstName","LastName","Email"\n'
    )  # simple-salesforce


def test_states_open_upload_complete_in_progress_job_complete(emulator_factory) -> None:
    emu = emulator_factory(processing_delay_ms=150)
    bulk2 = Bulk2(emu.base_url, emu.issue_token())
    job = bulk2.create(object="Account", operation="insert")
    assert bulk2.info(job["id"])["state"] == "Open"
    bulk2.upload(job["id"], "Name\n" + "".join(f"State{i}\n" for i in range(20_001)))
    seen = [bulk2.patch(job["id"], "UploadComplete").json()["state"]]
    deadline = time.monotonic() + 20
    while seen[-1] not in ("JobComplete", "Failed"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
        state = bulk2.info(job["id"])["state"]
        if state != seen[-1]:
            seen.append(state)
    assert seen == ["UploadComplete", "InProgress", "JobComplete"]


def test_one_upload_per_job_and_upload_checks(emulator_factory) -> None:
    emu = emulator_factory()
    bulk2 = Bulk2(emu.base_url, emu.issue_token())
    job = bulk2.create(object="Account", operation="insert")
    jid = job["id"]
    assert error(bulk2.upload(jid, "Name\nA\n", **{"Content-Type": "application/json"}))[:2] == (
        415,
        "UNSUPPORTEDCONTENTTYPE",
    )
    assert error(bulk2.upload(jid, b""))[:2] == (400, "INVALIDBATCH")
    emu.wsgi_app.bulk2.jobs.max_upload_bytes = 1000
    status, code, message = error(bulk2.upload(jid, "Name\n" + "x" * 2000 + "\n"))
    assert (status, code) == (413, "BULK_API_ERROR") and "150 MB" in message
    emu.wsgi_app.bulk2.jobs.max_upload_bytes = 10_000_000
    # failed uploads leave the job open for a new one; the first that succeeds is the only one
    assert (
        bulk2.upload(jid, gzip.compress(b"Name\nZipped\n"), **{"Content-Encoding": "gzip"}).status_code == 201
    )
    status, code, message = error(bulk2.upload(jid, "Name\nB\n"))
    assert (status, code) == (400, "BULK_API_ERROR")
    assert message == (
        f"Found multiple contents for job: <{jid}>, please 'Close' / 'Abort' / 'Delete' the current "
        f"Job then create a new Job and make sure you only do 'PUT' once on a given Job."
    )
    bulk2.patch(jid, "UploadComplete")
    assert bulk2.wait(jid)["numberRecordsProcessed"] == 1
    assert rows(bulk2.results(jid, "successfulResults"))[0]["Name"] == "Zipped"
    other = bulk2.create(object="Account", operation="insert")
    bulk2.patch(other["id"], "Aborted")
    assert error(bulk2.upload(other["id"], "Name\nLate\n"))[:2] == (400, "INVALIDJOBSTATE")


@pytest.mark.parametrize(
    ("delimiter", "char"),
    [("COMMA", ","), ("TAB", "\t"), ("PIPE", "|"), ("SEMICOLON", ";"), ("CARET", "^"), ("BACKQUOTE", "`")],
)
def test_column_delimiters_and_crlf_in_upload_and_results(bulk2, delimiter, char) -> None:
    eol = "\r\n"
    data = (
        eol.join(
            [
                char.join(["Name", "Description"]),
                char.join([f"Delim {delimiter}", '"two, ""parts"""']),
                char.join([f"Second {delimiter}", ""]),
            ]
        )
        + eol
    )
    info = bulk2.load(
        data, object="Account", operation="insert", columnDelimiter=delimiter, lineEnding="CRLF"
    )
    assert info["state"] == "JobComplete", info
    assert (info["columnDelimiter"], info["lineEnding"], info["numberRecordsProcessed"]) == (
        delimiter,
        "CRLF",
        2,
    )
    text = bulk2.results(info["id"], "successfulResults")
    assert text.startswith(char.join(['"sf__Id"', '"sf__Created"', '"Name"', '"Description"']) + eol)
    assert text.count(eol) == 3
    got = rows(text, char)
    assert [(r["Name"], r["Description"]) for r in got] == [
        (f"Delim {delimiter}", 'two, "parts"'),
        (f"Second {delimiter}", ""),
    ]


def test_line_ending_mismatch_fails_the_job_with_nothing_processed(bulk2) -> None:
    data = "Name\r\nCrlf1\r\nCrlf2\r\n"
    info = bulk2.load(data, object="Account", operation="insert")  # lineEnding LF (the default)
    assert info["state"] == "Failed" and info["numberRecordsProcessed"] == 0
    assert info["errorMessage"] == (
        "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF"
    )
    assert bulk2.results(info["id"], "unprocessedrecords") == data  # the upload, as sent
    assert bulk2.results(info["id"], "successfulResults") == '"sf__Id","sf__Created"\n'
    crlf = bulk2.load("Name\nLf\n", object="Account", operation="insert", lineEnding="CRLF")
    assert crlf["errorMessage"].endswith("Current LineEnding setting is CRLF")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("Name,NoSuchField__c\nA,B\n", "InvalidBatch : Field name not found : NoSuchField__c"),
        ("Name,name\nA,B\n", "InvalidBatch : Duplicate field name: name"),
        ("Name,Description\nA,B\nC\n", "ClientInputError : Line 3 has 1 columns but the header has 2"),
        ("Name\n", "ClientInputError : Records not found: the job data has a header but no records"),
        (
            'Name\n"unterminated\n',
            "InvalidBatch : Failed to parse CSV: unexpected end of data (a quote opened on line "
            "2 is never closed; a quote inside a value needs the value quoted and the quote doubled)",
        ),
        (
            'Name,Description\nA,5" disk\nB,7" disk\n',
            "InvalidBatch : Failed to parse CSV: a quote character inside an "
            "unquoted value, between lines 2 and 3; quote such values and double their quotes",
        ),
        ('Name,Description\nA,"x" y\n', "InvalidBatch : Failed to parse CSV: ',' expected after '\"'"),
    ],
)
def test_bad_job_data_fails_the_job(bulk2, data, message) -> None:
    info = bulk2.load(data, object="Account", operation="insert")
    assert (info["state"], info["errorMessage"], info["numberRecordsProcessed"]) == ("Failed", message, 0)


def test_invalid_utf8_and_missing_upload_fail_the_job(bulk2) -> None:
    info = bulk2.load(b"Name\n\xff\xfe\n", object="Account", operation="insert")
    assert info["state"] == "Failed" and info["errorMessage"].startswith(
        "ClientInputError : The job data is not valid"
    )
    job = bulk2.create(object="Account", operation="insert")
    bulk2.patch(job["id"], "UploadComplete")
    info = bulk2.wait(job["id"])
    assert info["state"] == "Failed" and "No job data was uploaded" in info["errorMessage"]


def test_upsert_update_delete_and_hard_delete_share_the_bulk1_store(emulator, bulk2) -> None:
    info = bulk2.load(
        "Name,AccountNumber\nB2Ups A,UP-1\nB2Ups B,UP-2\n", object="Account", operation="insert"
    )
    ids = {r["Name"]: r["sf__Id"] for r in rows(bulk2.results(info["id"], "successfulResults"))}
    # upsert on an external id field: one update, one insert, one failure (duplicate key in the data)
    ext = bulk2.load(
        "External_Id__c,Name\nB2EXT-1,Ext One\nB2EXT-1,Ext Dup\n",
        object="Account",
        operation="upsert",
        externalIdFieldName="External_Id__c",
    )
    assert ext["externalIdFieldName"] == "External_Id__c"
    ext2 = bulk2.load(
        "External_Id__c,Name\nB2EXT-9,Ext Nine\n",
        object="Account",
        operation="upsert",
        externalIdFieldName="External_Id__c",
    )
    upsert = bulk2.load(
        "External_Id__c,Name\nB2EXT-9,Ext Nine Renamed\nB2EXT-10,Ext Ten\n",
        object="Account",
        operation="upsert",
        externalIdFieldName="External_Id__c",
    )
    created = {r["Name"]: r["sf__Created"] for r in rows(bulk2.results(upsert["id"], "successfulResults"))}
    assert created == {"Ext Nine Renamed": "false", "Ext Ten": "true"}
    assert ext["numberRecordsFailed"] == 2 and ext2["numberRecordsFailed"] == 0

    update = bulk2.load(
        f"Id,Name\n{ids['B2Ups A']},B2Ups A2\n001000000000000AAA,Ghost\n",
        object="Account",
        operation="update",
    )
    assert (update["numberRecordsProcessed"], update["numberRecordsFailed"]) == (2, 1)
    bad = rows(bulk2.results(update["id"], "failedResults"))
    assert bad[0]["Name"] == "Ghost" and bad[0]["sf__Error"].split(":")[0] in (
        "MALFORMED_ID",
        "INVALID_CROSS_REFERENCE_KEY",
    )
    # Bulk 1.0 sees the Bulk 2.0 writes
    v1 = Bulk(emulator.base_url, emulator.issue_token())
    qjob = v1.create_job("query", "Account")
    qbatch = v1.add_batch(qjob, "SELECT Id, Name FROM Account WHERE Name LIKE 'B2Ups%'", "text/csv")
    v1.wait(qjob, qbatch)
    result_ids = v1.get(f"/job/{qjob}/batch/{qbatch}/result").text
    result = rows(v1.get(f"/job/{qjob}/batch/{qbatch}/result/{result_ids.split('<result>')[1][:15]}").text)
    assert {r["Name"] for r in result} == {"B2Ups A2", "B2Ups B"}

    delete = bulk2.load(f"Id\n{ids['B2Ups A']}\n", object="Account", operation="delete")
    hard = bulk2.load(f"Id\n{ids['B2Ups B']}\n", object="Account", operation="hardDelete")
    assert delete["numberRecordsFailed"] == hard["numberRecordsFailed"] == 0
    assert [r["sf__Created"] for r in rows(bulk2.results(delete["id"], "successfulResults"))] == ["false"]
    every = bulk2.query("SELECT Id, Name, IsDeleted FROM Account WHERE Name LIKE 'B2Ups%'", "queryAll")
    page = bulk2.request("GET", f"/query/{every['id']}/results")
    assert [(r["Id"], r["IsDeleted"]) for r in rows(page.text)] == [
        (ids["B2Ups A"], "true")
    ]  # hard-deleted B is gone


def test_abort_and_the_records_left_unprocessed(emulator_factory) -> None:
    emu = emulator_factory(processing_delay_ms=300, workers=1)
    bulk2 = Bulk2(emu.base_url, emu.issue_token())
    job = bulk2.create(object="Account", operation="insert")
    bulk2.upload(job["id"], "Name\n" + "".join(f"Abort{i}\n" for i in range(40_000)))
    bulk2.patch(job["id"], "UploadComplete")
    deadline = time.monotonic() + 20
    while bulk2.info(job["id"])["numberRecordsProcessed"] < 10_000:  # the first of 4 internal batches
        assert time.monotonic() < deadline
        time.sleep(0.01)
    aborted = bulk2.patch(job["id"], "Aborted")
    assert aborted.status_code == 200 and aborted.json()["state"] == "Aborted"
    emu.wait_idle(20)
    info = bulk2.info(job["id"])
    assert info["state"] == "Aborted" and 10_000 <= info["numberRecordsProcessed"] < 40_000
    done = rows(bulk2.results(job["id"], "successfulResults"))
    left = rows(bulk2.results(job["id"], "unprocessedrecords"))
    assert len(done) == info["numberRecordsProcessed"] and len(done) + len(left) == 40_000
    assert {r["Name"] for r in left}.isdisjoint(r["Name"] for r in done)
    status, code, message = error(bulk2.patch(job["id"], "Aborted"))
    assert (status, code, message) == (400, "INVALIDJOBSTATE", "Aborting already Aborted Job not allowed")


def test_patch_delete_and_transition_errors(bulk2) -> None:
    info = bulk2.load("Name\nDone\n", object="Account", operation="insert")
    assert error(bulk2.patch(info["id"], "Aborted")) == (
        400,
        "INVALIDJOBSTATE",
        "Aborting already Completed Job not allowed",
    )
    assert error(bulk2.patch(info["id"], "UploadComplete"))[:2] == (400, "INVALIDJOBSTATE")
    assert error(bulk2.patch(info["id"], "Closed"))[:2] == (400, "INVALIDJOBSTATE")
    assert error(bulk2.request("PATCH", f"/ingest/{info['id']}", json={"object": "Contact"}))[:2] == (
        400,
        "INVALIDJOB",
    )
    open_job = bulk2.create(object="Account", operation="insert")
    assert error(bulk2.request("DELETE", f"/ingest/{open_job['id']}")) == (
        400,
        "API_ERROR",
        "Error encountered when deleting the job because the job is not terminated",
    )
    gone = bulk2.request("DELETE", f"/ingest/{info['id']}")
    assert gone.status_code == 204 and gone.content == b""
    for path in ("", "/successfulResults"):
        assert error(bulk2.request("GET", f"/ingest/{info['id']}{path}")) == (
            404,
            "NOT_FOUND",
            "The requested resource does not exist",
        )
    assert error(bulk2.request("GET", f"/query/{open_job['id']}"))[:2] == (
        404,
        "NOT_FOUND",
    )  # not a query job


@pytest.mark.parametrize(
    ("doc", "code", "text"),
    [
        ({"object": "Account", "operation": "merge"}, "INVALIDJOB", "Invalid operation"),
        ({"object": "Account", "operation": "query"}, "INVALIDJOB", "/jobs/query"),
        ({"object": "Nope__c", "operation": "insert"}, "INVALIDENTITY", "Nope__c"),
        ({"operation": "insert"}, "INVALIDJOB", "object is required"),
        ({"object": "Account", "operation": "upsert"}, "INVALIDJOB", "External ID"),
        (
            {"object": "Account", "operation": "upsert", "externalIdFieldName": "AccountNumber"},
            "INVALIDJOB",
            "external id",
        ),
        (
            {"object": "Account", "operation": "insert", "columnDelimiter": "SPACE"},
            "INVALIDJOB",
            "columnDelimiter",
        ),
        ({"object": "Account", "operation": "insert", "lineEnding": "CR"}, "INVALIDJOB", "lineEnding"),
        ({"object": "Account", "operation": "insert", "contentType": "JSON"}, "INVALIDJOB", "CSV only"),
        (
            {"object": "Account", "operation": "insert", "colour": "red"},
            "JSON_PARSER_ERROR",
            'Unrecognized field "colour"',
        ),
    ],
)
def test_create_errors(bulk2, doc, code, text) -> None:
    status, got, message = error(bulk2.request("POST", "/ingest", json=doc))
    assert (status, got) == (400, code) and text in message, message


def test_auth_methods_paths_and_bodies(emulator, bulk2) -> None:
    url = bulk2.base + "/ingest"
    import requests

    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}):
        assert error(requests.get(url, headers=headers, timeout=10)) == (
            401,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
    oauth = requests.get(url, headers={"Authorization": f"OAuth {emulator.issue_token()}"}, timeout=10)
    assert oauth.status_code == 200
    resp = bulk2.request("PUT", "/ingest")
    assert error(resp) == (405, "METHOD_NOT_ALLOWED", "HTTP Method 'PUT' not allowed. Allowed are GET,POST")
    assert resp.headers["Allow"] == "GET, POST"
    assert error(bulk2.request("GET", "/nothing/here"))[:2] == (404, "NOT_FOUND")
    assert error(bulk2.request("GET", "/ingest/7505g00000000ZZAAA"))[:2] == (404, "NOT_FOUND")
    old = requests.get(
        emulator.base_url + "/services/data/v40.0/jobs/ingest", headers=bulk2.http.headers, timeout=10
    )
    assert error(old)[:2] == (404, "NOT_FOUND")  # Bulk API 2.0 starts at API 41.0
    bad_json = bulk2.request(
        "POST", "/ingest", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert error(bad_json)[:2] == (400, "JSON_PARSER_ERROR")
    assert error(bulk2.request("POST", "/ingest", json=["a"]))[:2] == (400, "JSON_PARSER_ERROR")


def test_expired_session_is_401_invalid_session_id(emulator_factory) -> None:
    emu = emulator_factory()
    bulk2 = Bulk2(emu.base_url, emu.issue_token())
    job = bulk2.create(object="Account", operation="insert")
    emu.expire_tokens()
    assert error(bulk2.upload(job["id"], "Name\nA\n")) == (
        401,
        "INVALID_SESSION_ID",
        "Session expired or invalid",
    )
    fresh = Bulk2(emu.base_url, emu.issue_token())
    assert fresh.upload(job["id"], "Name\nA\n").status_code == 201  # the failed call changed nothing


def test_list_jobs_with_filters_and_query_locator_paging(emulator_factory) -> None:
    emu = emulator_factory()
    token = emu.issue_token()
    bulk2 = Bulk2(emu.base_url, token)
    v1 = Bulk(emu.base_url, token)
    classic = v1.create_job("insert", "Account")
    chunked = v1.post(
        "/job",
        "<jobInfo xmlns='http://www.force.com/2009/06/asyncapi/dataload'><operation>query"
        "</operation><object>Account</object><contentType>CSV</contentType></jobInfo>",
        **{"Sforce-Enable-PKChunking": "chunkSize=1000"},
    )
    assert chunked.status_code == 201
    v2 = [bulk2.create(object="Account", operation="insert")["id"] for _ in range(3)]
    query = bulk2.create("query", operation="query", query="SELECT Id FROM Account")["id"]

    def listing(path: str, **params: str) -> list[dict]:
        resp = bulk2.request("GET", path, params=params)
        assert resp.status_code == 200, resp.text
        return resp.json()["records"]

    every = listing("/ingest")
    assert [j["jobType"] for j in every] == ["Classic", "Classic", "V2Ingest", "V2Ingest", "V2Ingest"]
    assert every[0]["id"] == classic and every[0]["state"] == "Open"
    assert [j["id"] for j in listing("/ingest", jobType="V2Ingest")] == v2
    assert [j["id"] for j in listing("/ingest", jobType="Classic", isPkChunkingEnabled="true")] == [
        every[1]["id"]
    ]
    assert len(listing("/ingest", isPkChunkingEnabled="false")) == 4
    assert [(j["id"], j["jobType"]) for j in listing("/query")] == [(query, "V2Query")]
    assert error(bulk2.request("GET", "/ingest", params={"jobType": "V2Query"}))[:2] == (400, "INVALIDJOB")
    assert error(bulk2.request("GET", "/ingest", params={"queryLocator": "junk"}))[:2] == (
        400,
        "INVALID_QUERY_LOCATOR",
    )

    emu.wsgi_app.bulk2.jobs.list_page = 2
    seen, url, pages = [], "/ingest?jobType=V2Ingest", 0
    while True:
        page = bulk2.http.get(
            emu.base_url + url if url.startswith("/services") else bulk2.base + url, timeout=10
        ).json()
        pages += 1
        seen += [j["id"] for j in page["records"]]
        if page["done"]:
            assert page["nextRecordsUrl"] is None
            break
        url = page["nextRecordsUrl"]
        assert url.startswith("/services/data/v62.0/jobs/ingest?queryLocator=") and "jobType=V2Ingest" in url
    assert (seen, pages) == (v2, 2)


@pytest.mark.slow
def test_ingest_and_query_in_worker_processes(emulator_factory) -> None:
    emu = emulator_factory(worker_processes=True, workers=2)
    bulk2 = Bulk2(emu.base_url, emu.issue_token())
    info = bulk2.load(_contacts(12_000, "Proc"), object="Contact", operation="insert")
    assert (info["state"], info["numberRecordsProcessed"]) == ("JobComplete", 12_000)
    assert len(rows(bulk2.results(info["id"], "successfulResults"))) == 12_000
    bad = bulk2.load("Name,Nope__c\nx,y\n", object="Account", operation="insert")
    assert bad["errorMessage"] == "InvalidBatch : Field name not found : Nope__c"
    q = bulk2.query("SELECT Id, Email FROM Contact WHERE Email LIKE 'proc%'")
    page = bulk2.request("GET", f"/query/{q['id']}/results")
    assert page.headers["Sforce-NumberOfRecords"] == "12000" and len(rows(page.text)) == 12_000


_TEXT = st.lists(st.sampled_from(list('ab ,;|"\n\r\t`^é€') + ["\r\n"]), max_size=12).map("".join)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(_TEXT, min_size=1, max_size=6),
    delimiter=st.sampled_from(["COMMA", "PIPE"]),
    line_ending=st.sampled_from(["LF", "CRLF"]),
)
def test_uploads_come_back_exactly_whichever_split_path(bulk2, values, delimiter, line_ending) -> None:
    """COMMA uploads are cut as sent (quote counting), others re-written by the csv module: same records."""
    char = {"COMMA": ",", "PIPE": "|"}[delimiter]
    eol = {"LF": "\n", "CRLF": "\r\n"}[line_ending]

    def cell(value: str) -> str:  # minimal quoting (csv.writer leaves a lone \r unquoted: not valid CSV)
        return (
            f'"{value.replace(chr(34), chr(34) * 2)}"' if any(c in value for c in f'"\r\n{char}') else value
        )

    data = f"Name{char}Description{eol}" + "".join(
        f"Prop{i}{char}{cell(v)}{eol}" for i, v in enumerate(values)
    )
    info = bulk2.load(
        data, object="Account", operation="insert", columnDelimiter=delimiter, lineEnding=line_ending
    )
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (
        "JobComplete",
        len(values),
        0,
    ), info
    echoed = rows(bulk2.results(info["id"], "successfulResults"), char)
    assert [(r["Name"], r["Description"]) for r in echoed] == [(f"Prop{i}", v) for i, v in enumerate(values)]
    query = bulk2.query(f"SELECT Name, Description FROM Account WHERE Id = '{echoed[-1]['sf__Id']}'")
    stored = rows(bulk2.request("GET", f"/query/{query['id']}/results").text)
    assert stored == [{"Name": f"Prop{len(values) - 1}", "Description": values[-1]}]
