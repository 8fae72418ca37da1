"""The salesforcebulkv2 operations from Synapse XML and from YAML, through the engine, against the emulator.

Both example dispatchers (examples/bulk2/) run the whole ingest flow (inline and file upload,
results as JSON rows and to a file) and the query flow with locator paging; a bad parameter and a
refused file path run the fault sequence with their ERROR_CODE; WSO2's element name
``salesforce_bulkapi_v2`` works as an alias.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from sfbulk.engine.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "bulk2"
PROXIES = ["salesforcebulkv2_dispatcher", "v2dispatcher"]  # Synapse XML, YAML
CSV = "FirstName,LastName\nGrace,Hopper\nEdsger,Dijkstra\n"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: Any) -> Path:
    return Path(tmp_path_factory.mktemp("v2files"))


@pytest.fixture(scope="module")
def engine(workdir: Path) -> Any:
    with Engine(registry=workdir / "registry") as engine:
        engine.file_root = workdir
        engine.load(EXAMPLES)
        yield engine


def _send(engine: Engine, emulator: Any, proxy: str, action: str, **fields: str) -> tuple[int, Any, Any]:
    creds = emulator.credentials
    settings = {
        "apiUrl": emulator.base_url,
        "tokenEndpointHostname": emulator.base_url,
        "refreshToken": creds["refresh_token"],
        "clientId": creds["client_id"],
        "clientSecret": creds["client_secret"],
    }
    root = etree.Element("request")
    for name, value in {**settings, **fields}.items():
        etree.SubElement(root, name).text = value
    result = engine.handle(
        proxy,
        method="POST",
        uri=f"/services/{proxy}",
        headers=[("Content-Type", "application/xml"), ("Action", f"urn:{action}")],
        body=etree.tostring(root),
    )
    text = result.body.decode("utf-8") if result.body else ""
    parsed: Any = json.loads(text) if text.lstrip().startswith(("[", "{")) else text
    return result.status, parsed, dict(result.headers)


def _wait(engine: Engine, emulator: Any, proxy: str, action: str, **ids: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        status, info, _ = _send(engine, emulator, proxy, action, **ids)
        assert status == 200, info
        if info["state"] in ("JobComplete", "Failed", "Aborted"):
            return info
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize("proxy", PROXIES)
def test_ingest_flow(engine: Engine, emulator: Any, workdir: Path, proxy: str) -> None:
    status, job, _ = _send(engine, emulator, proxy, "createJob", operation="insert", object="Contact")
    assert status == 200 and job["state"] == "Open", job
    status, body, _ = _send(engine, emulator, proxy, "uploadJobData", jobId=job["id"], inputData=CSV)
    assert status == 201 and body == ""
    status, closed, _ = _send(engine, emulator, proxy, "closeJob", jobId=job["id"])
    assert status == 200 and closed["state"] == "UploadComplete"
    info = _wait(engine, emulator, proxy, "getJobInfo", jobId=job["id"])
    assert info["numberRecordsProcessed"] == 2 and info["numberRecordsFailed"] == 0
    status, rows, _ = _send(engine, emulator, proxy, "getSuccessfulResults", jobId=job["id"])
    assert status == 200 and [r["LastName"] for r in rows] == ["Hopper", "Dijkstra"]
    status, receipt, _ = _send(
        engine,
        emulator,
        proxy,
        "getFailedResults",
        jobId=job["id"],
        outputType="FILE",
        filePath=f"{proxy}/failed.csv",
    )
    assert status == 200 and receipt["success"] is True
    assert (workdir / proxy / "failed.csv").read_text().splitlines() == [
        '"sf__Id","sf__Error","FirstName","LastName"'
    ]
    status, rows, _ = _send(engine, emulator, proxy, "getUnprocessedResults", jobId=job["id"])
    assert status == 200 and rows == []
    status, listed, _ = _send(engine, emulator, proxy, "getAllJobInfo", jobType="V2Ingest")
    assert status == 200 and job["id"] in [j["id"] for j in listed["records"]]
    status, _, _ = _send(engine, emulator, proxy, "deleteJob", jobId=job["id"])
    assert status == 204


@pytest.mark.parametrize("proxy", PROXIES)
def test_upload_from_file_then_abort(engine: Engine, emulator: Any, workdir: Path, proxy: str) -> None:
    (workdir / "upload.csv").write_text(CSV)
    status, job, _ = _send(engine, emulator, proxy, "createJob", operation="insert", object="Contact")
    status, _, _ = _send(
        engine, emulator, proxy, "uploadJobData", jobId=job["id"], inputType="FILE", filePath="upload.csv"
    )
    assert status == 201
    status, aborted, _ = _send(engine, emulator, proxy, "abortJob", jobId=job["id"])
    assert status == 200 and aborted["state"] == "Aborted"


@pytest.mark.parametrize("proxy", PROXIES)
def test_query_flow_with_locator_paging(engine: Engine, emulator: Any, proxy: str) -> None:
    tag = f"Flow{proxy[:3]}"
    status, job, _ = _send(engine, emulator, proxy, "createJob", operation="insert", object="Contact")
    _send(
        engine,
        emulator,
        proxy,
        "uploadJobData",
        jobId=job["id"],
        inputData="LastName\n" + "".join(f"{tag}{i}\n" for i in range(3)),
    )
    _send(engine, emulator, proxy, "closeJob", jobId=job["id"])
    _wait(engine, emulator, proxy, "getJobInfo", jobId=job["id"])
    status, query, _ = _send(
        engine,
        emulator,
        proxy,
        "createQueryJob",
        operation="query",
        query=f"SELECT LastName FROM Contact WHERE LastName LIKE '{tag}%'",
    )
    assert status == 200, query
    assert _wait(engine, emulator, proxy, "getQueryJobInfo", queryJobId=query["id"])["state"] == "JobComplete"
    names, locator, pages = [], "", 0
    while locator != "null":
        status, rows, headers = _send(
            engine,
            emulator,
            proxy,
            "getQueryJobResults",
            queryJobId=query["id"],
            locator=locator,
            maxRecords="2",
        )
        assert status == 200, rows
        names += [r["LastName"] for r in rows]
        locator = headers["X-Locator"]  # the flow's property 'locator', from Sforce-Locator
        assert headers["Sforce-NumberOfRecords"] == str(len(rows))
        pages += 1
    assert sorted(names) == [f"{tag}{i}" for i in range(3)] and pages == 2
    status, listed, _ = _send(engine, emulator, proxy, "getAllQueryJobInfo")
    assert status == 200 and query["id"] in [j["id"] for j in listed["records"]]
    status, refused, _ = _send(engine, emulator, proxy, "abortQueryJob", queryJobId=query["id"])
    assert status == 400 and refused[0]["errorCode"]
    status, _, _ = _send(engine, emulator, proxy, "deleteQueryJob", queryJobId=query["id"])
    assert status == 204


@pytest.mark.parametrize("proxy", PROXIES)
@pytest.mark.parametrize(
    ("action", "fields", "code", "message"),
    [
        (
            "getQueryJobResults",
            {"queryJobId": "750x", "maxRecords": "ten"},
            "500101",
            "must be a whole number",
        ),
        ("getSuccessfulResults", {"jobId": "750x", "outputType": "FILE"}, "500101", "filePath is empty"),
        (
            "getSuccessfulResults",
            {"jobId": "750x", "outputType": "CSV"},
            "500101",
            "must be one of BODY, FILE",
        ),
        (
            "uploadJobData",
            {"jobId": "750x", "inputType": "FILE", "filePath": "../../etc/passwd"},
            "700404",
            "outside the file root",
        ),
    ],
)
def test_bad_parameters_run_the_fault_sequence(
    engine: Engine, emulator: Any, proxy: str, action: str, fields: dict[str, str], code: str, message: str
) -> None:
    status, body, _ = _send(engine, emulator, proxy, action, **fields)
    fault = etree.fromstring(body.encode())
    assert status == 500 and fault.findtext("code") == code
    assert message in fault.findtext("message")


def test_expired_token_mid_flow_is_refreshed_and_replayed(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory()
    (tmp_path / "upload.csv").write_text(CSV)
    with Engine(registry=tmp_path / "registry") as engine:
        engine.file_root = tmp_path
        engine.load(EXAMPLES)
        status, job, _ = _send(
            engine, emu, "salesforcebulkv2_dispatcher", "createJob", operation="insert", object="Contact"
        )
        assert status == 200
        emu.expire_tokens()
        status, _, _ = _send(
            engine,
            emu,
            "salesforcebulkv2_dispatcher",
            "uploadJobData",
            jobId=job["id"],
            inputType="FILE",
            filePath="upload.csv",
        )
        assert status == 201
        emu.expire_tokens()
        status, closed, _ = _send(engine, emu, "v2dispatcher", "closeJob", jobId=job["id"])
        assert status == 200 and closed["state"] == "UploadComplete"
        _wait(engine, emu, "v2dispatcher", "getJobInfo", jobId=job["id"])
        emu.expire_tokens()
        status, rows, _ = _send(engine, emu, "v2dispatcher", "getSuccessfulResults", jobId=job["id"])
        assert status == 200 and [r["LastName"] for r in rows] == ["Hopper", "Dijkstra"]


def test_result_pages_from_a_flow(engine: Engine, emulator: Any) -> None:
    status, query, _ = _send(
        engine, emulator, "v2dispatcher", "createQueryJob", query="SELECT Id FROM Contact"
    )
    _wait(engine, emulator, "v2dispatcher", "getQueryJobInfo", queryJobId=query["id"])
    status, pages, _ = _send(
        engine,
        emulator,
        "salesforcebulkv2_dispatcher",
        "getQueryJobResultPages",
        queryJobId=query["id"],
        maxRecords="1000",
    )
    assert status == 200 and pages["resultPages"] and "/results?" in pages["resultPages"][0]["resultUrl"]


def test_serve_default_refuses_files(emulator: Any, tmp_path: Path) -> None:
    """An engine with no file root (sfbulk serve without --file-root) refuses every file path."""
    (tmp_path / "upload.csv").write_text(CSV)
    with Engine(registry=tmp_path / "registry") as engine:
        engine.file_root = None
        engine.load(EXAMPLES)
        status, body, _ = _send(
            engine,
            emulator,
            "v2dispatcher",
            "uploadJobData",
            jobId="750x",
            inputType="FILE",
            filePath=str(tmp_path / "upload.csv"),
        )
    fault = etree.fromstring(body.encode())
    assert status == 500 and fault.findtext("code") == "700404"
    assert "--file-root" in fault.findtext("message")


def test_wso2_element_name_is_an_alias(emulator: Any, tmp_path: Path) -> None:
    creds = emulator.credentials
    flow = tmp_path / "wso2.xml"
    flow.write_text(f"""<proxy xmlns="http://ws.apache.org/ns/synapse" name="wso2v2"><target><inSequence>
  <salesforce_bulkapi_v2.init>
    <instanceUrl>{emulator.base_url}</instanceUrl>
    <tokenUrl>{emulator.base_url}/services/oauth2/token</tokenUrl>
    <clientId>{creds["client_id"]}</clientId><clientSecret>{creds["client_secret"]}</clientSecret>
    <refreshToken>{creds["refresh_token"]}</refreshToken><name>v2</name>
  </salesforce_bulkapi_v2.init>
  <salesforce_bulkapi_v2.createQueryJob><query>SELECT Id FROM Contact</query></salesforce_bulkapi_v2.createQueryJob>
  <respond/></inSequence></target></proxy>""")
    with Engine(registry=tmp_path / "registry") as engine:
        engine.load(flow)
        result = engine.handle("wso2v2", method="POST", uri="/services/wso2v2", body=b"")
    assert result.status == 200 and json.loads(result.body)["state"] == "UploadComplete"
