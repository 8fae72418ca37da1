"""XPath 1.0 operator forms (`(a) or (b)`, `(4) div (2)`, `not((a) or (b))`, unions, predicates, Synapse
variables inside them) in every expression position, loaded from Synapse XML and from YAML and run
through the engine: filter@xpath, property@expression, switch@source, log properties, enrich source
and target, payloadFactory args, and `{...}` connector parameters sent to the emulator."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest
from lxml import etree

from sfbulk.engine.engine import Engine

JOB = "{http://www.force.com/2009/06/asyncapi/dataload}"

POSITIONS_XML = """
<proxy xmlns="http://ws.apache.org/ns/synapse" name="positions">
  <target><inSequence>
    <property name="either" expression="(//a = '1') or (//b = 'nope')"/>
    <property name="half" expression="(//n) div (2)"/>
    <property name="rest" expression="($ctx:half) mod (3)"/>
    <property name="pick" expression="substring('xyz', (4) div (2), 1)"/>
    <filter xpath="($ctx:either = 'true') and (not((//c) or ($trp:X-Skip)))">
      <then><property name="branch" value="then"/></then>
      <else><property name="branch" value="else"/></else>
    </filter>
    <switch source="concat(substring('ab', 1, (2) div (2)), $trp:X-Kind, ($url:q) * (2))">
      <case regex="aone6"><property name="switched" value="one"/></case>
      <default><property name="switched" value="default"/></default>
    </switch>
    <log level="custom">
      <property name="LOGGED" expression="($url:q) * (2) + (get-property('half')) mod (2)"/>
    </log>
    <enrich>
      <source type="custom" xpath="(//item[(@k) = 'x'] | //item[(@k) = $ctx:pick])[last()]"/>
      <target type="custom" action="child" xpath="(//slot[(@n) = 1] | //slot[(@n) = 2])[1]"/>
    </enrich>
    <payloadFactory media-type="xml">
      <format><out xmlns=""><either>$1</either><half>$2</half><rest>$3</rest><branch>$4</branch><switched>$5</switched><slot>$6</slot></out></format>
      <args>
        <arg expression="$ctx:either"/>
        <arg expression="$ctx:half"/>
        <arg expression="$ctx:rest"/>
        <arg expression="$ctx:branch"/>
        <arg expression="$ctx:switched"/>
        <arg expression="concat(//slot/item/@k, '-', count(//slot/item) * (10) div (5))"/>
      </args>
    </payloadFactory>
    <respond/>
  </inSequence></target>
</proxy>
"""

POSITIONS_YAML = r"""
proxies:
  positions:
    inSequence:
      - property: {name: either, expression: "(//a = '1') or (//b = 'nope')"}
      - property: {name: half, expression: "(//n) div (2)"}
      - property: {name: rest, expression: "($ctx:half) mod (3)"}
      - property: {name: pick, expression: "substring('xyz', (4) div (2), 1)"}
      - filter:
          xpath: "($ctx:either = 'true') and (not((//c) or ($trp:X-Skip)))"
          then: [{property: {name: branch, value: then}}]
          else: [{property: {name: branch, value: else}}]
      - switch:
          source: "concat(substring('ab', 1, (2) div (2)), $trp:X-Kind, ($url:q) * (2))"
          cases:
            - regex: aone6
              mediators: [{property: {name: switched, value: one}}]
          default: [{property: {name: switched, value: default}}]
      - log:
          level: custom
          properties:
            - {name: LOGGED, expression: "($url:q) * (2) + (get-property('half')) mod (2)"}
      - enrich:
          source: {type: custom, xpath: "(//item[(@k) = 'x'] | //item[(@k) = $ctx:pick])[last()]"}
          target: {type: custom, action: child, xpath: "(//slot[(@n) = 1] | //slot[(@n) = 2])[1]"}
      - payloadFactory:
          format: <out><either>$1</either><half>$2</half><rest>$3</rest><branch>$4</branch><switched>$5</switched><slot>$6</slot></out>
          args:
            - expression: $ctx:either
            - expression: $ctx:half
            - expression: $ctx:rest
            - expression: $ctx:branch
            - expression: $ctx:switched
            - expression: "concat(//slot/item/@k, '-', count(//slot/item) * (10) div (5))"
      - respond
"""

REQUEST = b'<r><a>1</a><n>10</n><item k="x">X</item><item k="y">Y</item><slot n="2"/><slot n="1"/></r>'


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


@pytest.mark.parametrize("front_end, text", [("cfg.xml", POSITIONS_XML), ("cfg.yaml", POSITIONS_YAML)])
def test_operator_forms_in_every_mediator_position(tmp_path, caplog, front_end, text):
    caplog.set_level(logging.INFO, logger="sfbulk.mediation")
    with Engine(registry=tmp_path / "registry") as engine:
        engine.load(write(tmp_path, front_end, text))
        result = engine.handle(
            "positions",
            method="POST",
            uri="/services/positions?q=3",
            headers=[("Content-Type", "application/xml"), ("X-Kind", "one")],
            body=REQUEST,
        )
    assert result.status == 200, result.body
    out = etree.fromstring(result.body)
    assert {child.tag: child.text for child in out} == {
        "either": "true",  # property: (a) or (b)
        "half": "5.0",  # property: (a) div (b)
        "rest": "2.0",  # property: ($ctx:x) mod (3)
        "branch": "then",  # filter: (..) and (not((..) or ($trp:..)))
        "switched": "one",  # switch: div and * inside concat with $trp: and $url:
        "slot": "y-2",  # enrich: unions with $ctx: in predicates, source and target; arg with * and div
    }
    logged = [r.getMessage() for r in caplog.records if r.name == "sfbulk.mediation"]
    assert "LOGGED = 7.0" in logged  # log: * + mod with $url: and get-property


@pytest.mark.parametrize("front_end", ["xml", "yaml"])
def test_operator_forms_in_connector_parameters_reach_salesforce(tmp_path, emulator, front_end):
    """`{...}` values of connector parameters (the seed's `{$ctx:x}` position) with operator forms:
    the job the emulator creates has the object and content type they compute."""
    creds = emulator.credentials
    init = {
        "apiUrl": "{$ctx:apiUrl}",
        "apiVersion": "{substring('34.0', 1, (8) div (2))}",
        "refreshToken": "{$ctx:refreshToken}",
        "clientId": "{$ctx:clientId}",
        "clientSecret": "{$ctx:clientSecret}",
        "tokenEndpointHostname": "{$ctx:apiUrl}",
    }
    create = {
        "operation": "{substring('insert', 1, (12) div (2))}",
        "object": "{concat(substring($ctx:object, 1, (7) * (1)), substring('X', 1, (0) mod (2)))}",
        "contentType": "{concat('CS', substring('VX', 1, ((1 = 1) and (2 = 2)) * 1))}",
    }
    props = ("apiUrl", "refreshToken", "clientId", "clientSecret", "object")
    if front_end == "xml":

        def params(values):
            return "".join(f"<{k}>{v}</{k}>" for k, v in values.items())

        text = f"""
        <proxy xmlns="http://ws.apache.org/ns/synapse" name="create">
          <target><inSequence>
            {"".join(f'<property name="{p}" expression="//{p}/text()"/>' for p in props)}
            <salesforcebulk.init>{params(init)}</salesforcebulk.init>
            <salesforcebulk.createJob>{params(create)}</salesforcebulk.createJob>
            <respond/>
          </inSequence></target>
        </proxy>
        """
        path = write(tmp_path, "create.xml", text)
    else:

        def params(values):
            return "{" + ", ".join(f'{k}: "{v}"' for k, v in values.items()) + "}"

        lines = [f"      - property: {{name: {p}, expression: //{p}/text()}}" for p in props]
        text = "\n".join(
            [
                "proxies:",
                "  create:",
                "    inSequence:",
                *lines,
                f"      - salesforcebulk.init: {params(init)}",
                f"      - salesforcebulk.createJob: {params(create)}",
                "      - respond",
            ]
        )
        path = tmp_path / "create.yaml"
        path.write_text(text, encoding="utf-8")
    body = etree.Element("createJob")
    values = {
        "apiUrl": emulator.base_url,
        "refreshToken": creds["refresh_token"],
        "clientId": creds["client_id"],
        "clientSecret": creds["client_secret"],
        "object": "ContactZZZ",
    }
    for name, value in values.items():
        etree.SubElement(body, name).text = value
    with Engine(registry=tmp_path / "registry") as engine:
        engine.load(path)
        result = engine.handle(
            "create",
            method="POST",
            uri="/services/create",
            headers=[("Content-Type", "application/xml")],
            body=etree.tostring(body),
        )
    assert result.status == 201, result.body
    job = etree.fromstring(result.body)
    assert [job.findtext(f"{JOB}{f}") for f in ("operation", "object", "contentType", "apiVersion")] == [
        "insert",
        "Contact",
        "CSV",
        "34.0",
    ]
