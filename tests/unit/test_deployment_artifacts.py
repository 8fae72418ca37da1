"""Artifacts a WSO2 deployment ships besides APIs: MI's default main and fault sequences (<in>/<out>),
local entries holding a sequence or an endpoint, text and XML local entries read by get-property."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

NS = 'xmlns="http://ws.apache.org/ns/synapse"'

MI_MAIN = f"""
<sequence {NS} name="main">
    <in>
        <log level="full"/>
        <drop/>
    </in>
    <out>
        <send/>
    </out>
    <description>The main sequence for the message mediation</description>
</sequence>
"""

MI_FAULT = f"""
<sequence {NS} name="fault">
    <log level="full">
        <property name="MESSAGE" value="Executing default 'fault' sequence"/>
        <property name="ERROR_CODE" expression="get-property('ERROR_CODE')"/>
        <property name="ERROR_MESSAGE" expression="get-property('ERROR_MESSAGE')"/>
    </log>
    <drop/>
</sequence>
"""


def deploy(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "synapse-configs" / "default"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return tmp_path


def test_mi_default_sequences_load_and_the_fault_sequence_answers_202(engine, tmp_path):
    engine.load(
        deploy(
            tmp_path,
            {
                "sequences/main.xml": MI_MAIN,
                "sequences/fault.xml": MI_FAULT,
                "api/broken.xml": f'<api {NS} name="broken" context="/broken"><resource methods="GET">'
                '<inSequence><sequence key="missing"/><respond/></inSequence></resource></api>',
            },
        )
    )
    assert {"main", "fault"} <= set(engine.sequences)
    result = engine.handle_api(method="GET", uri="/broken")
    assert (result.status, result.body) == (202, b"")  # MI's fault sequence logs and drops


def test_in_and_out_run_in_their_direction_only(engine, tmp_path):
    engine.load(
        deploy(
            tmp_path,
            {
                "proxy-services/p.xml": f"""
        <proxy {NS} name="p"><target>
          <inSequence>
            <in><property name="seen" value="in"/></in>
            <out><property name="seen" value="wrong"/></out>
            <loopback/>
          </inSequence>
          <outSequence>
            <in><property name="seen" value="wrong again"/></in>
            <out>
              <payloadFactory media-type="xml">
                <format><r xmlns="">$1</r></format>
                <args><arg expression="$ctx:seen"/></args>
              </payloadFactory>
              <send/>
            </out>
          </outSequence>
        </target></proxy>"""
            },
        )
    )
    result = engine.handle(
        "p", method="POST", uri="/services/p", body=b"<a/>", headers=[("Content-Type", "application/xml")]
    )
    assert result.body == b"<r>in</r>"


def test_local_entries_holding_a_sequence_an_endpoint_xml_and_text(engine, backend, tmp_path):
    engine.load(
        deploy(
            tmp_path,
            {
                "local-entries/greeting.xml": f'<localEntry {NS} key="greeting">  hello  </localEntry>',
                "local-entries/limits.xml": f'<localEntry {NS} key="limits"><limits xmlns=""><max>5</max></limits></localEntry>',
                "local-entries/answerSeq.xml": f"""
            <localEntry {NS} key="answerSeq">
              <sequence>
                <payloadFactory media-type="xml">
                  <format><r xmlns="">$1</r></format>
                  <args><arg expression="get-property('greeting')"/></args>
                </payloadFactory>
                <respond/>
              </sequence>
            </localEntry>""",
                "local-entries/backendEP.xml": f"""
            <localEntry {NS} key="backendEP">
              <endpoint><http method="post" uri-template="{backend.url}/from-entry"/></endpoint>
            </localEntry>""",
                "api/a.xml": f"""
            <api {NS} name="a" context="/a">
              <resource uri-template="/hello"><inSequence><sequence key="answerSeq"/></inSequence></resource>
              <resource uri-template="/call"><inSequence><call><endpoint key="backendEP"/></call><respond/></inSequence></resource>
            </api>""",
            },
        )
    )
    assert engine.local_entry("greeting") == "hello"
    assert engine.local_entry("limits").findtext("max") == "5"
    assert engine.handle_api(method="GET", uri="/a/hello").body == b"<r>hello</r>"
    result = engine.handle_api(
        method="POST", uri="/a/call", body=b"<x/>", headers=[("Content-Type", "application/xml")]
    )
    assert result.status == 200 and backend.requests[0].path == "/from-entry"


def test_resource_sequences_given_by_key_resolve_at_run_time(engine, tmp_path):
    engine.load(
        deploy(
            tmp_path,
            {
                "sequences/hello.xml": f"""
            <sequence {NS} name="hello">
              <payloadFactory media-type="json">
                <format>{{"id": "$1", "method": "$2"}}</format>
                <args><arg expression="$ctx:uri.var.id"/><arg expression="get-property('REST_METHOD')"/></args>
              </payloadFactory>
              <respond/>
            </sequence>""",
                "api/a.xml": f"""
            <api {NS} name="a" context="/a">
              <resource methods="PUT" uri-template="/items/{{id}}" inSequence="hello"/>
              <resource methods="GET" uri-template="/lost" inSequence="noSuchSequence"/>
            </api>""",
            },
        )
    )
    assert json.loads(engine.handle_api(method="PUT", uri="/a/items/x%2Fy").body) == {
        "id": "x/y",
        "method": "PUT",
    }
    lost = engine.handle_api(method="GET", uri="/a/lost")
    assert lost.status == 500
    assert (
        b"keyValue ='noSuchSequence'} cannot be found (inSequence of resource /lost of API 'a')" in lost.body
    )
