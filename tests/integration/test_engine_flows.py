"""Connector operations through the mediators and the Engine against the emulator:
init + createJob + getJob + updateJob via a dispatcher proxy, refresh on InvalidSessionId,
connection-refused fault 101503, missing init / missing URL parameter faults, no secret in logs."""

from __future__ import annotations

import logging
import re

import pytest
from fixtures.engine import free_port_refusing
from lxml import etree

from sfbulk.expressions.expression import Value
from sfbulk.expressions.expression import compile_expression as X
from sfbulk.mediators import (
    ConnectorOperationMediator,
    LogMediator,
    LogProperty,
    PayloadArg,
    PayloadFactoryMediator,
    PropertyMediator,
    Proxy,
    RespondMediator,
    Sequence,
    SwitchCase,
    SwitchMediator,
)

NS = {"a": "http://www.force.com/2009/06/asyncapi/dataload"}
INIT_PARAMS = (
    "apiUrl",
    "apiVersion",
    "accessToken",
    "refreshToken",
    "clientId",
    "clientSecret",
    "intervalTime",
    "registryPath",
    "tokenEndpointHostname",
)
FIELDS = (*INIT_PARAMS, "operation", "object", "contentType", "jobId", "state")


def op(name: str, *params: str, **literals: str) -> ConnectorOperationMediator:
    values = {p: Value.parse("{$ctx:" + p + "}", {}) for p in params}
    values.update({k: Value.parse(v, {}) for k, v in literals.items()})
    return ConnectorOperationMediator("salesforcebulk", name, values)


def dispatcher(on_error: str | None = None) -> Proxy:
    """The WSO2 integration-test style proxy: properties from the body, init, switch on $trp:Action."""
    props = [PropertyMediator(f, expression=X(f"//{f}/text()")) for f in FIELDS]
    cases = [
        SwitchCase(
            re.compile("urn:createJob"),
            (op("createJob", "operation", "object", "contentType", undeclared="x"),),
        ),
        SwitchCase(re.compile("urn:getJob"), (op("getJob", "jobId"),)),
        SwitchCase(re.compile("urn:updateJob"), (op("updateJob", "jobId", "state"),)),
    ]
    flow = [*props, op("init", *INIT_PARAMS), SwitchMediator(X("$trp:Action"), cases), RespondMediator()]
    return Proxy("salesforcebulk", in_sequence=Sequence(None, flow, on_error=on_error))


def request_body(emulator, **fields: str) -> bytes:
    creds = emulator.credentials
    values = {
        "apiUrl": emulator.base_url,
        "apiVersion": "34.0",
        "refreshToken": creds["refresh_token"],
        "clientId": creds["client_id"],
        "clientSecret": creds["client_secret"],
        "tokenEndpointHostname": emulator.base_url,
        "registryPath": "connectors/SalesforceBulk",
        **fields,
    }
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in values.items())
    return f"<request>{inner}</request>".encode()


def call(engine, emulator, action: str, **fields: str):
    return engine.handle(
        "salesforcebulk",
        method="POST",
        uri="/services/salesforcebulk",
        headers=[("Content-Type", "application/xml"), ("Action", action)],
        body=request_body(emulator, **fields),
    )


def text(body: bytes, name: str) -> str | None:
    return etree.fromstring(body).findtext(f"a:{name}", namespaces=NS)


@pytest.fixture
def flow_engine(engine):
    engine.add_proxy(dispatcher())
    return engine


def test_create_get_update_job_through_the_engine(flow_engine, emulator, access_token, caplog):
    caplog.set_level(logging.DEBUG, logger="sfbulk")
    created = call(
        flow_engine,
        emulator,
        "urn:createJob",
        accessToken=access_token,
        operation="insert",
        object="Contact",
        contentType="CSV",
    )
    assert created.status == 201, created.body
    job_id = text(created.body, "id")
    assert job_id and job_id.startswith("750")
    assert (text(created.body, "operation"), text(created.body, "object"), text(created.body, "state")) == (
        "insert",
        "Contact",
        "Open",
    )

    got = call(flow_engine, emulator, "urn:getJob", accessToken=access_token, jobId=job_id)
    assert got.status == 200 and text(got.body, "id") == job_id and text(got.body, "contentType") == "CSV"

    closed = call(
        flow_engine, emulator, "urn:updateJob", accessToken=access_token, jobId=job_id, state="Closed"
    )
    assert closed.status == 200 and text(closed.body, "state") == "Closed"

    # One connection (one pool) served the three messages.
    connector = flow_engine.connector("salesforcebulk")
    assert len(connector._cache) == 1

    # Negative case: the backend's 400 is relayed, not turned into a fault.
    bad = call(flow_engine, emulator, "urn:getJob", accessToken=access_token, jobId="INVALID")
    assert bad.status == 400 and b"<exceptionCode>" in bad.body

    secrets = [access_token, emulator.credentials["refresh_token"], emulator.credentials["client_secret"]]
    for record in caplog.records:
        assert not any(s in record.getMessage() for s in secrets), record.getMessage()
    # The connection never becomes a user-visible property or header.
    for value in created.headers:
        assert "Connection object" not in str(value)


def test_refresh_and_replay_on_invalid_session(flow_engine, emulator, access_token):
    created = call(
        flow_engine,
        emulator,
        "urn:createJob",
        accessToken=access_token,
        operation="insert",
        object="Account",
        contentType="CSV",
    )
    job_id = text(created.body, "id")
    emulator.expire_tokens()
    got = call(flow_engine, emulator, "urn:getJob", accessToken=access_token, jobId=job_id)
    assert got.status == 200 and text(got.body, "id") == job_id


def test_connection_refused_is_fault_101503(engine, emulator):
    seen: dict = {}

    class Capture:
        def mediate(self, ctx):
            seen.update(ctx.properties)
            return True

    engine.add_sequence(
        Sequence(
            "faultHandlerSeq",
            [
                Capture(),
                LogMediator(
                    level="custom", properties=[LogProperty("code", expression=X("$ctx:ERROR_CODE"))]
                ),
                PayloadFactoryMediator(
                    '<error xmlns=""><code>$1</code></error>',
                    args=[PayloadArg(expression=X("$ctx:ERROR_CODE"))],
                ),
                RespondMediator(),
            ],
        )
    )
    engine.add_proxy(dispatcher(on_error="faultHandlerSeq"))
    dead = f"http://127.0.0.1:{free_port_refusing()}"
    result = call(
        engine,
        emulator,
        "urn:createJob",
        apiUrl=dead,
        tokenEndpointHostname=dead,
        accessToken="00Dstale-token-value",
        operation="insert",
        object="Contact",
    )
    assert seen["ERROR_CODE"] == 101503
    assert result.body == b"<error><code>101503</code></error>"
    assert "00Dstale-token-value" not in str(seen.get("ERROR_MESSAGE"))


def test_operation_without_init_and_missing_required_parameter(engine, emulator, access_token):
    engine.add_proxy(
        Proxy("noinit", in_sequence=Sequence(None, [op("getJob", jobId="750x"), RespondMediator()]))
    )
    result = engine.handle("noinit", method="POST", uri="/services/noinit", headers=[], body=b"")
    assert result.status == 500 and b"salesforcebulk.init" in result.body

    engine.add_proxy(dispatcher())
    result = call(engine, emulator, "urn:getJob", accessToken=access_token)  # no jobId: no URL to call
    assert result.status == 400 and b"<code>500101</code>" in result.body and b"jobId" in result.body
    # A missing body value is Salesforce's to judge (WSO2 parity): its 400 is relayed, not a fault.
    result = call(
        engine, emulator, "urn:createJob", accessToken=access_token, object="Contact"
    )  # no operation
    assert result.status == 400 and text(result.body, "exceptionCode") == "InvalidJob"
    assert text(result.body, "exceptionMessage") == "Unable to parse Job: operation is required"


def test_parameters_bind_in_the_callers_context_and_null_is_unbound(engine, emulator, access_token):
    # contentType bound to a missing property → unbound → the operation's default applies (no fault).
    engine.add_proxy(dispatcher())
    created = call(
        engine, emulator, "urn:createJob", accessToken=access_token, operation="insert", object="Lead"
    )
    assert created.status == 201, created.body
    assert text(created.body, "object") == "Lead"
