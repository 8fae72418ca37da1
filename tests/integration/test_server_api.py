"""REST APIs over HTTP on the real server (sfbulk serve's app on cheroot) against the emulator:
the example WSO2 deployment folder and the WSO2 connector's REST API example, run unchanged;
MI's routing (proxies at /services/<name>, APIs at their context) and its 404 / 405 / OPTIONS."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
import requests
from fixtures.server import EXAMPLES_DIR
from lxml import etree

DEPLOYMENT = EXAMPLES_DIR / "deployment"
WSO2_API = EXAMPLES_DIR / "synapse" / "api" / "salesforcebulk_api.xml"
JOB = "{http://www.force.com/2009/06/asyncapi/dataload}"


@pytest.fixture
def deployment(sfbulk_server, emulator):
    return sfbulk_server(
        DEPLOYMENT, init_defaults={"salesforcebulk": {"tokenEndpointHostname": emulator.base_url}}
    )


def job_of(response: requests.Response) -> etree._Element:
    assert response.headers["Content-Type"].startswith("application/xml"), response.text
    return etree.fromstring(response.content)


def test_the_deployment_creates_reads_and_closes_a_job_through_its_api(deployment):
    created = requests.post(
        f"{deployment.url}/bulk/v1/jobs",
        timeout=30,
        json={"operation": "insert", "object": "Contact", "contentType": "CSV"},
    )
    assert created.status_code == 201, created.text
    job_id = job_of(created).findtext(f"{JOB}id")
    assert job_id and job_of(created).findtext(f"{JOB}contentType") == "CSV"
    read = requests.get(f"{deployment.url}/bulk/v1/jobs/{job_id}", timeout=30)
    assert read.status_code == 200 and job_of(read).findtext(f"{JOB}state") == "Open"
    closed = requests.post(f"{deployment.url}/bulk/v1/jobs/{job_id}/close", timeout=30)
    assert closed.status_code == 200 and job_of(closed).findtext(f"{JOB}state") == "Closed"


@pytest.mark.slow
def test_salesforce_errors_are_relayed_and_faults_answer_json(deployment, sfbulk_server, tmp_path):
    missing = requests.get(f"{deployment.url}/bulk/v1/jobs/750000000000000AAA", timeout=30)
    assert missing.status_code == 400 and job_of(missing).findtext(f"{JOB}exceptionCode") == "InvalidJob"
    # the same deployment with a token endpoint that refuses connections: the resource's faultSequence answers
    broken = sfbulk_server(
        DEPLOYMENT, init_defaults={"salesforcebulk": {"tokenEndpointHostname": "http://127.0.0.1:9"}}
    )
    failed = requests.get(f"{broken.url}/bulk/v1/jobs/750000000000000AAA", timeout=30)
    assert failed.status_code == 502, failed.text
    assert failed.headers["Content-Type"].startswith("application/json")
    error = failed.json()["error"]
    assert error["code"] and error["message"]
    assert "sfbulk-demo-client-secret" not in failed.text


def test_a_named_endpoint_reads_a_job_with_the_callers_session(deployment, emulator, access_token):
    created = requests.post(
        f"{deployment.url}/bulk/v1/jobs", json={"operation": "insert", "object": "Contact"}, timeout=30
    )
    job_id = job_of(created).findtext(f"{JOB}id")
    query = urlencode({"instance": emulator.base_url})
    raw = requests.get(
        f"{deployment.url}/bulk/v1/jobs/{job_id}/raw?{query}",
        headers={"X-SFDC-Session": access_token},
        timeout=30,
    )
    assert raw.status_code == 200, raw.text
    assert job_of(raw).findtext(f"{JOB}id") == job_id
    # the query template needs its parameter: without it no resource matches
    assert requests.get(f"{deployment.url}/bulk/v1/jobs/{job_id}/raw", timeout=10).status_code == 404
    # the proxy whose target endpoint is the same named endpoint
    via_proxy = requests.get(
        deployment.service_url("BulkJobStatus") + f"?{query}&jobId={job_id}",
        headers={"X-SFDC-Session": access_token},
        timeout=30,
    )
    assert via_proxy.status_code == 200 and job_of(via_proxy).findtext(f"{JOB}id") == job_id


def test_the_rest_properties_mi_sets(deployment):
    status = requests.get(f"{deployment.url}/bulk/v1/status?q=a%20b", timeout=10)
    assert status.status_code == 200
    assert status.json() == {
        "api": "BulkJobs:vv1",
        "version": "v1",
        "method": "GET",
        "resource": "/status",
        "postfix": "/status?q=a%20b",
        "q": "a b",
    }


def test_404_405_and_options_as_mi_answers_them(deployment):
    base = f"{deployment.url}/bulk/v1"
    not_found = requests.get(f"{base}/nothing/here", timeout=10)
    assert not_found.status_code == 404
    assert "No resource of API 'BulkJobs:vv1'" in not_found.text and "/nothing/here" in not_found.text
    no_api = requests.get(f"{deployment.url}/bulk/v2/jobs", timeout=10)
    assert no_api.status_code == 404 and "No API is deployed at /bulk/v2/jobs" in no_api.text
    wrong_method = requests.delete(f"{base}/jobs", timeout=10)
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "POST"
    assert "DELETE is not allowed on /jobs" in wrong_method.text
    options = requests.options(f"{base}/jobs/750x", timeout=10)
    assert (options.status_code, options.headers["Allow"], options.content) == (200, "GET", b"")
    json_404 = requests.get(f"{base}/nothing", headers={"Accept": "application/json"}, timeout=10)
    assert json_404.json()["fault"]["code"] == "NotFound"


def test_proxies_stay_at_services_and_health_lists_the_apis(deployment):
    unknown = requests.get(f"{deployment.url}/services/NoSuchProxy", timeout=10)
    assert unknown.status_code == 404 and "No proxy service named 'NoSuchProxy'" in unknown.text
    health = requests.get(f"{deployment.url}/health", timeout=10).json()
    assert health["proxies"] == ["BulkJobStatus"] and health["apis"] == {"BulkJobs:vv1": "/bulk/v1"}


def test_a_malformed_body_for_an_api_is_400_before_mediation(deployment):
    bad = requests.post(
        f"{deployment.url}/bulk/v1/jobs",
        data=b"{not json",
        timeout=10,
        headers={"Content-Type": "application/json"},
    )
    assert bad.status_code == 400 and "MalformedPayload" in bad.text


def test_the_wso2_connector_rest_api_example_runs_unchanged(sfbulk_server, emulator):
    server = sfbulk_server(WSO2_API)
    creds = emulator.credentials
    settings = json.loads((WSO2_API.parent / "createJob.json").read_text())
    settings.update(
        apiUrl=emulator.base_url,
        refreshToken=creds["refresh_token"],
        clientId=creds["client_id"],
        clientSecret=creds["client_secret"],
    )
    server.engine.init_defaults = {"salesforcebulk": {"tokenEndpointHostname": emulator.base_url}}
    created = requests.post(f"{server.url}/salesforcebulk/createJob", json=settings, timeout=30)
    assert created.status_code == 201, created.text
    job_id = job_of(created).findtext(f"{JOB}id")
    assert job_of(created).findtext(f"{JOB}object") == "Contact"
    query = urlencode(
        {k: settings[k] for k in ("apiVersion", "apiUrl", "refreshToken", "clientId", "clientSecret")}
    )
    read = requests.get(f"{server.url}/salesforcebulk/getJob/{job_id}?{query}", timeout=30)
    assert read.status_code == 200 and job_of(read).findtext(f"{JOB}id") == job_id
    closed = requests.post(
        f"{server.url}/salesforcebulk/closeJob", json={**settings, "jobId": job_id}, timeout=30
    )
    assert closed.status_code == 200 and job_of(closed).findtext(f"{JOB}state") == "Closed"
    wrong = requests.post(f"{server.url}/salesforcebulk/getJob/{job_id}", json=settings, timeout=30)
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "GET"


def test_a_carbon_application_is_served_like_the_folder(sfbulk_server, emulator, tmp_path):
    from fixtures.capp import make_car

    car = make_car(tmp_path / "BulkApp_1.0.0.car")
    server = sfbulk_server(
        car, init_defaults={"salesforcebulk": {"tokenEndpointHostname": emulator.base_url}}
    )
    created = requests.post(
        f"{server.url}/bulk/v1/jobs", json={"operation": "insert", "object": "Lead"}, timeout=30
    )
    assert created.status_code == 201, created.text
    assert job_of(created).findtext(f"{JOB}object") == "Lead"
