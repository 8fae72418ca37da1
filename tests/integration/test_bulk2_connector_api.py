"""The salesforcebulkv2 bundle from Python: every operation against the emulator on loopback.

Ingest flow createJob -> uploadJobData (inline, file, body=) -> closeJob -> poll getJobInfo ->
results (body and file); query flow with locator paging; token expiry mid-flow refreshed and
replayed; bad parameters refused before any call with a code; file paths confined.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from sfbulk.connector.connection import Connection, Connector
from sfbulk.connector.files import FileNotAllowedError
from sfbulk.errors import ParameterError
from sfbulk.registry import FileRegistry

CSV = "FirstName,LastName,Email\nAda,Lovelace,ada@example.com\nAlan,Turing,alan@example.com\n"


@pytest.fixture(scope="module")
def v2() -> Connector:
    return Connector.load("salesforcebulkv2")


def _open(v2: Connector, emu: Any, tmp_path: Path, **extra: Any) -> Connection:
    creds = emu.credentials
    return v2.connection(
        apiUrl=emu.base_url,
        accessToken="",
        refreshToken=creds["refresh_token"],
        clientId=creds["client_id"],
        clientSecret=creds["client_secret"],
        tokenEndpointHostname=emu.base_url,
        registry=FileRegistry(tmp_path / "registry"),
        file_root=tmp_path,
        **extra,
    )


def _wait(conn: Connection, op: str, key: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        info = json.loads(conn.invoke(op, **{key: job_id}).content)
        if info["state"] in ("JobComplete", "Failed", "Aborted"):
            return info
        assert time.monotonic() < deadline, info
        time.sleep(0.05)


def _ingest(conn: Connection, csv_text: str | None = None, **upload: Any) -> str:
    created = conn.invoke("createJob", operation="insert", object="Contact")
    assert created.status == 200, created.text
    assert created.properties["state"] == "Open"
    job_id = created.properties["jobId"]
    if csv_text is not None:
        upload.setdefault("inputData", csv_text)
    uploaded = conn.invoke("uploadJobData", jobId=job_id, **upload)
    assert uploaded.status == 201, uploaded.text
    closed = conn.invoke("closeJob", jobId=job_id)
    assert closed.status == 200 and closed.properties["state"] == "UploadComplete", closed.text
    return job_id


def test_ingest_flow_inline_results_as_json_body(v2: Connector, emulator: Any, tmp_path: Path) -> None:
    with _open(v2, emulator, tmp_path) as conn:
        job_id = _ingest(conn, CSV)
        info = _wait(conn, "getJobInfo", "jobId", job_id)
        assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 2
        ok = conn.invoke("getSuccessfulResults", jobId=job_id)
        assert ok.status == 200 and ok.headers["Content-Type"].startswith("application/json")
        rows = json.loads(ok.content)
        assert [r["Email"] for r in rows] == ["ada@example.com", "alan@example.com"]
        assert all(r["sf__Id"].startswith("003") and r["sf__Created"] == "true" for r in rows)
        failed = json.loads(conn.invoke("getFailedResults", jobId=job_id).content)
        assert failed == []
        assert json.loads(conn.invoke("getUnprocessedResults", jobId=job_id).content) == []
        listed = json.loads(conn.invoke("getAllJobInfo", jobType="V2Ingest").content)
        assert job_id in [job["id"] for job in listed["records"]]
        deleted = conn.invoke("deleteJob", jobId=job_id)
        assert deleted.status == 204
        gone = conn.invoke("getJobInfo", jobId=job_id)
        assert gone.status == 404 and json.loads(gone.content)[0]["errorCode"] == "NOT_FOUND"


def test_ingest_from_file_and_results_to_files(v2: Connector, emulator: Any, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(
        CSV + "Bad,Row,not-an-email\n".replace("not-an-email", ""), encoding="utf-8"
    )
    with _open(v2, emulator, tmp_path) as conn:
        job_id = _ingest(conn, inputType="FILE", filePath="in.csv")
        _wait(conn, "getJobInfo", "jobId", job_id)
        written = conn.invoke("getSuccessfulResults", jobId=job_id, outputType="FILE", filePath="out/ok.csv")
        receipt = json.loads(written.content)
        assert receipt["success"] is True and receipt["filePath"] == "out/ok.csv"
        text = (tmp_path / "out" / "ok.csv").read_text(encoding="utf-8")
        assert receipt["bytes"] == len(text.encode("utf-8"))
        assert text.splitlines()[0] == '"sf__Id","sf__Created","FirstName","LastName","Email"'
        assert len(text.splitlines()) == 4
        failed = conn.invoke(
            "getFailedResults", jobId=job_id, outputType="FILE", filePath=str(tmp_path / "f.csv")
        )
        assert failed.status == 200
        assert (tmp_path / "f.csv").read_text(encoding="utf-8").startswith('"sf__Id","sf__Error"')
        assert not list(tmp_path.rglob("*.part"))


def test_upload_from_python_body_streams_a_file_object(v2: Connector, emulator: Any, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(CSV.encode())
    with _open(v2, emulator, tmp_path) as conn, open(tmp_path / "in.csv", "rb") as handle:
        created = conn.invoke("createJob", operation="insert", object="Contact")
        job_id = created.properties["jobId"]
        assert conn.invoke("uploadJobData", jobId=job_id, body=handle).status == 201
        conn.invoke("closeJob", jobId=job_id)
        assert _wait(conn, "getJobInfo", "jobId", job_id)["numberRecordsProcessed"] == 2
        with pytest.raises(ParameterError, match="body= was given and inputData is set"):
            conn.invoke("uploadJobData", jobId=job_id, body=b"x", inputData="y")


def test_abort_and_unprocessed(v2: Connector, emulator: Any, tmp_path: Path) -> None:
    with _open(v2, emulator, tmp_path) as conn:
        job_id = conn.invoke("createJob", operation="insert", object="Contact").properties["jobId"]
        aborted = conn.invoke("abortJob", jobId=job_id)
        assert aborted.status == 200 and aborted.properties["state"] == "Aborted"
        again = conn.invoke("uploadJobData", jobId=job_id, inputData=CSV)
        assert again.status >= 400 and "errorCode" in json.loads(again.content)[0]


def test_query_flow_with_locator_paging(v2: Connector, emulator: Any, tmp_path: Path) -> None:
    with _open(v2, emulator, tmp_path) as conn:
        job_id = _ingest(conn, "LastName\n" + "".join(f"Paging{i}\n" for i in range(5)))
        _wait(conn, "getJobInfo", "jobId", job_id)
        created = conn.invoke(
            "createQueryJob", query="SELECT Id, LastName FROM Contact WHERE LastName LIKE 'Paging%'"
        )
        assert created.status == 200, created.text
        query_id = created.properties["jobId"]
        info = _wait(conn, "getQueryJobInfo", "queryJobId", query_id)
        assert info["state"] == "JobComplete"
        names: list[str] = []
        locator = ""
        pages = 0
        while locator != "null":
            page = conn.invoke("getQueryJobResults", queryJobId=query_id, locator=locator, maxRecords=2)
            assert page.status == 200, page.text
            rows = json.loads(page.content)
            assert int(page.properties["numberOfRecords"]) == len(rows)
            names += [row["LastName"] for row in rows]
            locator = page.properties["locator"]
            pages += 1
        assert sorted(names) == [f"Paging{i}" for i in range(5)] and pages == 3
        to_file = conn.invoke("getQueryJobResults", queryJobId=query_id, outputType="FILE", filePath="q.csv")
        assert to_file.properties["locator"] == "null"
        assert len((tmp_path / "q.csv").read_text().splitlines()) == 6
        listed = json.loads(conn.invoke("getAllQueryJobInfo").content)
        assert query_id in [job["id"] for job in listed["records"]]
        assert conn.invoke("abortQueryJob", queryJobId=query_id).status == 400  # finished: Salesforce says no
        assert conn.invoke("deleteQueryJob", queryJobId=query_id).status == 204


def test_result_pages_list_parallel_downloads(v2: Connector, emulator: Any, tmp_path: Path) -> None:
    from urllib.parse import parse_qs, urlsplit

    with _open(v2, emulator, tmp_path) as conn:
        job_id = _ingest(conn, "LastName\n" + "".join(f"Pages{i}\n" for i in range(5)))
        _wait(conn, "getJobInfo", "jobId", job_id)
        query_id = conn.invoke(
            "createQueryJob", query="SELECT LastName FROM Contact WHERE LastName LIKE 'Pages%'"
        ).properties["jobId"]
        _wait(conn, "getQueryJobInfo", "queryJobId", query_id)
        listing = conn.invoke("getQueryJobResultPages", queryJobId=query_id, maxRecords=2)
        assert listing.status == 200 and listing.properties["done"] == "true"
        urls = [page["resultUrl"] for page in json.loads(listing.content)["resultPages"]]
        names = []
        for url in urls:
            query = parse_qs(urlsplit(url).query)
            page = conn.invoke(
                "getQueryJobResults",
                queryJobId=query_id,
                locator=query.get("locator", [""])[0],
                maxRecords=query["maxRecords"][0],
            )
            names += [row["LastName"] for row in json.loads(page.content)]
        assert len(urls) == 3 and sorted(names) == [f"Pages{i}" for i in range(5)]


def test_streamed_results_for_the_pipeline(v2: Connector, emulator: Any, tmp_path: Path) -> None:
    with _open(v2, emulator, tmp_path) as conn:
        job_id = _ingest(conn, CSV)
        _wait(conn, "getJobInfo", "jobId", job_id)
        with conn.invoke("getSuccessfulResults", jobId=job_id, stream=True) as streamed:
            raw = b"".join(streamed.iter_content(7))
        assert raw.startswith(b'"sf__Id"') and raw.count(b"\n") == 3


def test_expired_token_mid_flow_is_refreshed_and_replayed(
    v2: Connector, emulator_factory: Any, tmp_path: Path
) -> None:
    emu = emulator_factory()
    (tmp_path / "in.csv").write_bytes(CSV.encode())
    with _open(v2, emu, tmp_path) as conn:
        job_id = conn.invoke("createJob", operation="insert", object="Contact").properties["jobId"]
        before = conn.auth.refresh_count
        emu.expire_tokens()
        uploaded = conn.invoke("uploadJobData", jobId=job_id, inputType="FILE", filePath="in.csv")
        assert uploaded.status == 201  # the file was re-opened for the replay
        assert conn.auth.refresh_count == before + 1
        emu.expire_tokens()
        assert conn.invoke("closeJob", jobId=job_id).status == 200
        _wait(conn, "getJobInfo", "jobId", job_id)
        emu.expire_tokens()
        rows = json.loads(conn.invoke("getSuccessfulResults", jobId=job_id).content)
        assert len(rows) == 2 and conn.auth.refresh_count == before + 3


def test_without_refresh_credentials_the_401_comes_back(
    v2: Connector, emulator_factory: Any, access_token: str, tmp_path: Path
) -> None:
    emu = emulator_factory()
    creds = emu.credentials
    token = v2.connection(
        apiUrl=emu.base_url,
        accessToken="",
        refreshToken=creds["refresh_token"],
        clientId=creds["client_id"],
        clientSecret=creds["client_secret"],
        tokenEndpointHostname=emu.base_url,
        registry=FileRegistry(tmp_path / "r"),
    )
    token.invoke("getAllJobInfo")
    stale = token.auth.current().token.reveal()
    token.close()
    emu.expire_tokens()
    with v2.connection(
        apiUrl=emu.base_url, accessToken=stale, registry=FileRegistry(tmp_path / "r2")
    ) as conn:
        answer = conn.invoke("getAllJobInfo")
        assert answer.status == 401 and json.loads(answer.content)[0]["errorCode"] == "INVALID_SESSION_ID"


@pytest.mark.parametrize(
    ("op", "params", "message"),
    [
        (
            "getQueryJobResults",
            {"queryJobId": "750x", "maxRecords": "ten"},
            "'maxRecords' must be a whole number",
        ),
        ("getQueryJobResults", {"queryJobId": "750x", "maxRecords": "0"}, "whole number of at least 1"),
        (
            "getSuccessfulResults",
            {"jobId": "750x", "outputType": "FILE"},
            "outputType is FILE but filePath is empty",
        ),
        (
            "getFailedResults",
            {"jobId": "750x", "outputType": "XML"},
            "'outputType' must be one of BODY, FILE",
        ),
        ("uploadJobData", {"jobId": "750x", "inputType": "FILE"}, "inputType is FILE but filePath is empty"),
        ("uploadJobData", {"jobId": "750x", "inputType": "STDIN"}, "'inputType' must be one of INLINE, FILE"),
        ("uploadJobData", {"jobId": "750x", "inputType": "FILE", "filePath": "missing.csv"}, "not found"),
        ("getJobInfo", {}, "'jobId' is required"),
    ],
)
def test_bad_parameters_fault_before_any_call(
    v2: Connector, emulator: Any, tmp_path: Path, op: str, params: dict[str, str], message: str
) -> None:
    with _open(v2, emulator, tmp_path) as conn:
        with pytest.raises(ParameterError, match=message) as caught:
            conn.invoke(op, **params)
        assert caught.value.code == 500101


@pytest.mark.parametrize("path", ["../outside.csv", "/etc/passwd", "link/x.csv"])
def test_file_paths_are_confined_to_the_file_root(
    v2: Connector, emulator: Any, tmp_path: Path, path: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with _open(v2, emulator, root) as conn:
        with pytest.raises(FileNotAllowedError, match="outside the file root") as caught:
            conn.invoke("uploadJobData", jobId="750x", inputType="FILE", filePath=path)
        assert caught.value.code == 700404
        with pytest.raises(FileNotAllowedError, match="outside the file root"):
            conn.invoke("getSuccessfulResults", jobId="750x", outputType="FILE", filePath=path)
    assert not (tmp_path / "outside.csv").exists()


def test_no_file_root_refuses_every_file(v2: Connector, emulator: Any, tmp_path: Path) -> None:
    with _open(
        v2,
        emulator,
        tmp_path,
    ) as conn:
        conn.files = type(conn.files)(None)
        with pytest.raises(FileNotAllowedError, match="file access is turned off"):
            conn.invoke("getQueryJobResults", queryJobId="750x", outputType="FILE", filePath="q.csv")


def test_wso2_init_names_and_bearer_session(v2: Connector, emulator: Any, tmp_path: Path) -> None:
    creds = emulator.credentials
    with v2.connection(
        instanceUrl=emulator.base_url,
        tokenUrl=f"{emulator.base_url}/services/oauth2/token",
        refreshToken=creds["refresh_token"],
        clientId=creds["client_id"],
        clientSecret=creds["client_secret"],
        name="salesforce_v2",
        accessToken="",
        registry=FileRegistry(tmp_path / "registry"),
    ) as conn:
        assert conn.api_url == f"{emulator.base_url}/services/data/v62.0/jobs"
        answer = conn.invoke("getAllJobInfo")
        assert answer.status == 200 and "records" in json.loads(answer.content)
