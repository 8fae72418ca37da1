"""Errors a caller can cause, over real HTTP: each is a Synapse fault with a code and a message, the
proxy's fault sequence runs, the log gets one bounded WARNING line, and nothing of the caller's
(headers, credentials) comes back by accident.

The seed proxy (`examples/synapse/salesforcebulk_createJob.xml`, fault sequence `faultHandlerSeq`)
runs against the emulator; `NO_FAULT_SEQ_PROXY` is the same flow without `onError`, to see the
engine's own fault answer.
"""

from __future__ import annotations

import logging

import pytest
import requests
from lxml import etree
from test_server_seed import FAULT_SEQ, SEED_PROXY, seed_request

AUTH_FAULT = 700101
REGISTRY_FAULT = 700201
PARAMETER_FAULT = 500101

NO_FAULT_SEQ_PROXY = (
    SEED_PROXY.read_text()
    .replace(' onError="faultHandlerSeq"', "")
    .replace('name="salesforcebulk_createJob"', 'name="createJob_nofault"')
)

ECHO_PROXY = """<proxy xmlns="http://ws.apache.org/ns/synapse" name="echo_headers">
  <target><inSequence>
    <header name="X-Correlation-Id" scope="transport" expression="$trp:X-Correlation-Id"/>
    <payloadFactory media-type="xml"><format><ok xmlns=""/></format></payloadFactory>
    <respond/>
  </inSequence></target>
</proxy>
"""

CALLER_HEADERS = {
    "Authorization": "Bearer CALLER-SECRET-TOKEN",
    "Cookie": "sid=CALLER-COOKIE",
    "X-Custom": "mine",
    "X-Correlation-Id": "corr-42",
    "Content-Type": "text/xml",
}


@pytest.fixture
def fault_server(sfbulk_server, emulator, tmp_path):
    extra = tmp_path / "extra_proxies.xml"
    extra.write_text(
        f'<definitions xmlns="http://ws.apache.org/ns/synapse">{NO_FAULT_SEQ_PROXY.split("?>", 1)[1]}'
        f"{ECHO_PROXY}</definitions>"
    )
    return sfbulk_server(
        SEED_PROXY,
        FAULT_SEQ,
        extra,
        init_defaults={"salesforcebulk": {"tokenEndpointHostname": emulator.base_url}},
    )


def _post(server, body: str, proxy: str = "salesforcebulk_createJob", headers=None) -> requests.Response:
    return requests.post(
        server.service_url(proxy),
        data=body.encode(),
        headers=headers or {"Content-Type": "text/xml"},
        timeout=30,
    )


def _fault(response: requests.Response) -> tuple[int, str]:
    root = etree.fromstring(response.content)
    return int(root.findtext("code")), root.findtext("message") or ""


def _sfbulk_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("sfbulk") and r.name != "sfbulk.access"]


def _assert_one_warning(caplog, code: int) -> None:
    engine = [
        r
        for r in _sfbulk_records(caplog)
        if r.name == "sfbulk.engine.engine" and r.levelno >= logging.WARNING
    ]
    assert len(engine) == 1, [r.getMessage() for r in engine]
    assert engine[0].levelno == logging.WARNING and engine[0].exc_info is None
    assert f"ERROR_CODE {code}" in engine[0].getMessage()
    assert not any("Traceback" in r.getMessage() or r.exc_info for r in _sfbulk_records(caplog))


def test_a_refused_token_grant_is_an_auth_fault_through_the_fault_sequence(fault_server, emulator, caplog):
    body = seed_request(
        emulator,
        "not-a-token",
        refreshToken="bogus-refresh",
        clientId="bogus-client",
        clientSecret="bogus-secret-value",
        intervalTime="0",
        registryPath="tenants/mallory",
    )
    with caplog.at_level(logging.INFO):
        response = _post(fault_server, body)
    assert response.status_code == 500  # what faultHandlerSeq answers
    code, message = _fault(response)
    assert code == AUTH_FAULT
    assert "token" in message.lower() and "Runtime error" not in message
    assert "bogus-secret-value" not in response.text and "bogus-refresh" not in response.text
    _assert_one_warning(caplog, AUTH_FAULT)
    assert not any(
        "bogus-secret-value" in r.getMessage() or "bogus-refresh" in r.getMessage() for r in caplog.records
    )


def test_an_illegal_registry_path_is_a_registry_fault(fault_server, emulator, access_token, caplog):
    with caplog.at_level(logging.INFO):
        response = _post(fault_server, seed_request(emulator, access_token, registryPath="../../etc"))
    assert response.status_code == 500
    code, message = _fault(response)
    assert code == REGISTRY_FAULT
    assert "outside the registry" in message
    _assert_one_warning(caplog, REGISTRY_FAULT)


def test_a_bad_parameter_is_a_parameter_fault(fault_server, emulator, access_token, caplog):
    with caplog.at_level(logging.INFO):
        response = _post(fault_server, seed_request(emulator, access_token, apiVersion="x"))
    code, message = _fault(response)
    assert code == PARAMETER_FAULT and "apiVersion" in message
    _assert_one_warning(caplog, PARAMETER_FAULT)


def test_without_a_fault_sequence_the_engine_answers_a_4xx_fault(fault_server, emulator, access_token):
    response = _post(
        fault_server, seed_request(emulator, access_token, registryPath="../x"), proxy="createJob_nofault"
    )
    assert response.status_code == 400
    assert _fault(response)[0] == REGISTRY_FAULT
    body = seed_request(
        emulator,
        "x",
        refreshToken="bogus",
        clientId="bogus",
        clientSecret="bogus",
        intervalTime="0",
        registryPath="tenants/nofault",
    )
    response = _post(fault_server, body, proxy="createJob_nofault")
    assert response.status_code == 401
    assert _fault(response)[0] == AUTH_FAULT


def test_one_request_writes_a_few_kb_of_log_whatever_it_carries(fault_server, emulator, access_token, caplog):
    deep = "/".join(["a"] * 1900)
    body = seed_request(emulator, access_token, registryPath=deep, apiVersion="34.0")
    assert len(body) < 5000
    for level, budget in ((logging.INFO, 4_000), (logging.DEBUG, 24_000)):
        caplog.clear()
        with caplog.at_level(level):
            response = _post(fault_server, body)
        assert response.status_code == 500
        written = sum(len(r.getMessage()) for r in caplog.records)
        assert written < budget, (level, written)
    assert requests.get(fault_server.url + "/health", timeout=5).status_code == 200


def test_a_json_lone_surrogate_is_400_at_once(fault_server):
    for text in ('{"createJob": {"object": "\\ud800"}}', '["\\udfff x"]'):
        response = requests.post(
            fault_server.service_url("salesforcebulk_createJob"),
            data=text.encode(),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert response.status_code == 400
        fault = response.json()["fault"]
        assert fault["code"] == "MalformedPayload" and "surrogate" in fault["message"]


def test_the_fault_path_echoes_no_request_header(fault_server, emulator, access_token):
    response = _post(
        fault_server, seed_request(emulator, access_token, registryPath="../../etc"), headers=CALLER_HEADERS
    )
    assert _fault(response)[0] == REGISTRY_FAULT
    for name in ("Authorization", "Cookie", "X-Custom", "X-Correlation-Id"):
        assert name not in response.headers
    assert "CALLER-SECRET-TOKEN" not in str(response.headers) and "CALLER-COOKIE" not in str(response.headers)


def test_payload_factory_respond_returns_only_the_headers_a_mediator_set(fault_server):
    response = requests.post(
        fault_server.service_url("echo_headers"), data=b"<a/>", headers=CALLER_HEADERS, timeout=10
    )
    assert response.status_code == 200 and b"<ok/>" in response.content
    assert response.headers["X-Correlation-Id"] == "corr-42"  # copied by <header>: flows back
    for name in ("Authorization", "Cookie", "X-Custom"):
        assert name not in response.headers


def test_call_and_respond_still_relays_salesforce_headers(fault_server, emulator, access_token):
    response = _post(fault_server, seed_request(emulator, access_token), headers=CALLER_HEADERS)
    assert response.status_code == 201
    assert "Authorization" not in response.headers and "Cookie" not in response.headers
    assert response.headers["Content-Type"].startswith("application/xml")


def test_a_secret_given_again_as_another_parameter_is_not_echoed_by_the_fault(
    fault_server, emulator, access_token, caplog
):
    secret = "Sup3r-Secret-Value-991"
    with caplog.at_level(logging.INFO):
        response = _post(
            fault_server, seed_request(emulator, access_token, clientSecret=secret, apiVersion=secret)
        )
    code, message = _fault(response)
    assert code == PARAMETER_FAULT and "apiVersion" in message
    assert secret not in response.text
    assert not any(secret in r.getMessage() for r in caplog.records)
