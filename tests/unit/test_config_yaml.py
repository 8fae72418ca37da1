"""YAML front-end: schema errors name file, line and field; YAML and Synapse XML build equal trees."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from config_tree import dump

from sfbulk import mediators as m
from sfbulk import yamlfile
from sfbulk.config import load_paths
from sfbulk.config.document import Document
from sfbulk.connector.connection import Connector
from sfbulk.errors import ConfigError, ConfigErrors


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def messages(tmp_path: Path, text: str, **kw) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_paths([write(tmp_path, "flows.yaml", text)], **kw)
    exc = info.value
    errors = exc.errors if isinstance(exc, ConfigErrors) else [exc]
    return [str(e).replace(str(tmp_path) + "/", "") for e in errors]


# --- errors --------------------------------------------------------------------------------------


def test_missing_required_key_names_file_line_and_field(tmp_path):
    text = """
        proxies:
          createJob:
            inSequence:
              - property: {name: a, value: "1"}
              - log
              - respond
              - property:
                  expression: //x/text()
        """
    assert messages(tmp_path, text) == [
        "flows.yaml:7: proxies.createJob.inSequence[3].property: 'name' is required"
    ]


def test_every_problem_is_reported_at_once_in_file_order(tmp_path):
    text = """
        proxies:
          p:
            inSequence:
              - frobnicate: {}
              - property: {name: a, value: x, scope: nowhere}
              - filter: {xpath: "true()", then: 42}
              - respond: {}
            colour: blue
        """
    assert messages(tmp_path, text) == [
        "flows.yaml:4: proxies.p.inSequence[0].frobnicate: unknown mediator 'frobnicate' (use property, filter, "
        "switch, log, payloadFactory, header, enrich, call, send, respond, drop, loopback, sequence, or a "
        "connector operation such as salesforcebulk.createJob)",
        "flows.yaml:5: proxies.p.inSequence[1].property.scope: 'nowhere' is not one of: default, transport, "
        "axis2, axis2-client, operation, registry, system, trace, analytics",
        "flows.yaml:6: proxies.p.inSequence[2].filter.then: expected a list, got a number",
        "flows.yaml:8: proxies.p.colour: unknown key 'colour' (allowed: description, endpoint, faultSequence, "
        "inSequence, outSequence, startOnLoad, transports)",
    ]


def test_yaml_syntax_and_duplicate_keys(tmp_path):
    assert messages(tmp_path, "proxies:\n  p: [1\n")[0].startswith("flows.yaml:3: invalid YAML")
    assert messages(tmp_path, "proxies: {}\nproxies: {}\n") == ["flows.yaml:2: duplicate key 'proxies'"]


def test_bad_xpath_and_regex_are_located(tmp_path):
    text = """
        sequences:
          s:
            - property: {name: a, expression: "//a[["}
            - switch:
                source: $ctx:a
                cases:
                  - regex: "(unclosed"
        """
    found = messages(tmp_path, text)
    assert found[0].startswith("flows.yaml:3: sequences.s[0].property.expression: ")
    assert found[1].startswith(
        "flows.yaml:7: sequences.s[1].switch.cases[0].regex: invalid regular expression"
    )


def test_builder_rules_beyond_the_schema(tmp_path):
    text = """
        sequences:
          s:
            - property: {name: a, value: "1", expression: //a}
            - salesforcebulk.createJobs: {object: Contact}
        """
    found = messages(tmp_path, text, connectors={"salesforcebulk": Connector.load()})
    assert found[0] == (
        "flows.yaml:3: sequences.s[0].property: property: give only one of value, expression or xml "
        "(got value, expression)"
    )
    assert found[1].startswith(
        "flows.yaml:4: sequences.s[1].salesforcebulk.createJobs: connector 'salesforcebulk' has no operation"
    )


def _bundle_outcome(text: str):
    """What the bundle loader makes of ``text``: plain data and the line of every path, or the error."""
    try:
        tree = yamlfile.parse_yaml(text, "f.yaml")
    except ConfigError as exc:
        return ("error", str(exc), exc.line)
    lines = {} if tree is None or not hasattr(tree, "line") else {(): tree.line}

    def walk(node, path):
        if isinstance(node, yamlfile.LineDict):
            for key, value in node.items():
                lines[(*path, str(key))] = node.lines[key]
                walk(value, (*path, str(key)))
        elif isinstance(node, yamlfile.LineList):
            for index, value in enumerate(node):
                lines[(*path, index)] = node.lines[index]
                walk(value, (*path, index))

    walk(tree, ())
    return ("ok", tree, lines)


def _flow_outcome(text: str):
    try:
        doc = Document.from_yaml(text, "f.yaml")
    except ConfigError as exc:
        return ("error", str(exc), exc.line)
    lines = {
        path: line for path, line in doc.lines.items() if path != () or isinstance(doc.data, dict | list)
    }
    return ("ok", doc.data, lines)


def _pyyaml_says(text: str):
    """PyYAML's pure-Python safe loader: what the text means ('error' when it refuses it)."""
    try:
        return ("ok", yaml.load(text, Loader=yaml.SafeLoader))  # noqa: S506 - SafeLoader
    except yaml.YAMLError:
        return ("error",)


SAME_TEXTS = [
    "a:\tb\n",  # a tab after the colon: PyYAML refuses it, libyaml accepts it
    "a: b\n",
    "a:\n\t- 1\n",  # tab indentation
    "a: !!str 1\n",
    "a: 'x'\nb: [1, {c: 2}]\nd:\n  - e\n  - f: g\n",
    "x: &a [1, 2]\ny: *a\n",
    "base: &b {k: 1}\nderived:\n  <<: *b\n  m: 2\n",
    "a: |\n  text\n  more\nb: >-\n  folded\n",
    "- {b: 2}\n- [3]\n",
    "1: one\n2.5: yes\n~: null key\nfalse: 0\n",
    "1: one\ntrue: again\n",  # 1 == True: a duplicate key
    "a: 1\na: 2\n",
    "? [1, 2]\n: x\n",
    "a: [1, 2\n",
    "a: *nowhere\n",
    "",
    "# only a comment\n",
    "\ufeffa: 1\n",
]


@pytest.mark.parametrize("text", SAME_TEXTS)
def test_a_text_loads_the_same_in_a_flow_and_in_the_bundle(text):
    flow = _flow_outcome(text)
    assert flow == _bundle_outcome(text)
    meaning = _pyyaml_says(text)
    if flow[0] == "ok":  # ... and means what PyYAML's pure-Python loader says it means
        assert meaning == ("ok", flow[1])
    elif "duplicate key" not in flow[1] and "plain scalars" not in flow[1]:  # errors PyYAML itself lets pass
        assert meaning == ("error",)


def test_a_tab_after_a_colon_is_an_error_everywhere(tmp_path):
    assert messages(tmp_path, "proxies:\tnope\n")[0].startswith("flows.yaml:1: invalid YAML")
    with pytest.raises(ConfigError, match="invalid YAML"):
        yamlfile.parse_yaml("a:\tb\n", "connector.yaml")


def test_a_scalar_document_keeps_its_line(tmp_path):
    assert Document.from_yaml("# a note\nhello\n", "f.yaml").line_of(()) == 2
    assert messages(tmp_path, "# a note\nhello\n")[0].startswith(
        "flows.yaml:2: a flows file must be a mapping"
    )


def test_line_map_points_at_keys():
    doc = Document.from_yaml("a:\n  - x: 1\n  - y:\n      z: 2\n", "f.yaml")
    assert doc.line_of(("a", 1, "y", "z")) == 4 and doc.line_of(("a", 0)) == 2
    assert doc.line_of(("a", 5, "nope")) == 1  # nearest known ancestor


# --- building ------------------------------------------------------------------------------------


def test_scalars_bare_words_and_empty_connector_params(tmp_path):
    cfg = load_paths(
        [
            write(
                tmp_path,
                "flows.yml",
                """
                proxies:
                  p:
                    transports: "http, https"
                    inSequence:
                      - property: {name: n, value: 3000000}
                      - property: {name: b, value: true, type: BOOLEAN}
                      - salesforcebulk.getJob: {jobId: "{$ctx:jobId}", unused: "", nothing: null}
                      - salesforcebulk.init
                      - respond
                """,
            )
        ]
    )
    proxy = cfg.proxies["p"]
    n, b, get_job, init, respond = proxy.in_sequence.mediators
    assert proxy.transports == ("http", "https")
    assert n.value == "3000000" and b.value is True
    assert list(get_job.params) == ["jobId"] and init.params == {}
    assert isinstance(respond, m.RespondMediator)


# --- the same tree from both front-ends ----------------------------------------------------------

EQUIVALENT_XML = """
<definitions xmlns="http://ws.apache.org/ns/synapse" xmlns:sf="urn:partner.soap.sforce.com">
  <localEntry key="greeting">hello</localEntry>
  <localEntry key="tree"><t xmlns="">1</t></localEntry>
  <sequence name="fault">
    <log level="full"/>
    <drop/>
  </sequence>
  <sequence name="errSeq" onError="fault">
    <log level="custom" separator=";">
      <property name="code" expression="get-property('ERROR_CODE')"/>
      <property name="fixed" value="x"/>
    </log>
    <payloadFactory media-type="xml">
      <format><e xmlns="">$1</e></format>
      <args><arg expression="get-property('ERROR_MESSAGE')"/><arg value="v"/></args>
    </payloadFactory>
    <respond/>
  </sequence>
  <proxy name="everything" transports="https http" startOnLoad="true">
    <target faultSequence="errSeq">
      <inSequence onError="errSeq">
        <property name="apiUrl" expression="//apiUrl/text()"/>
        <property name="id" expression="//s/text()" pattern="ID-(\\d+)" group="1"/>
        <property name="HTTP_SC" value="404" scope="axis2" type="INTEGER"/>
        <property name="tree"><t xmlns="">1</t></property>
        <property name="Content-Encoding" action="remove" scope="transport"/>
        <header name="X-SFDC-Session" expression="get-property('uri.var.accessToken')" scope="transport"/>
        <header name="sf:SessionHeader" value="t"/>
        <header name="Cache-Control" action="remove" scope="transport"/>
        <filter source="$ctx:ct" regex="text/csv">
          <then><log/></then>
          <else><sequence key="errSeq"/></else>
        </filter>
        <filter xpath="//sf:id">
          <then sequence="errSeq"/>
        </filter>
        <switch source="$trp:Action">
          <case regex="urn:createJob">
            <salesforcebulk.init>
              <apiUrl>{$ctx:apiUrl}</apiUrl>
              <apiVersion>34.0</apiVersion>
            </salesforcebulk.init>
            <salesforcebulk.createJob>
              <operation>{$ctx:operation}</operation>
              <object>Contact</object>
            </salesforcebulk.createJob>
          </case>
          <case regex="urn:(get|update)Job"><drop/></case>
          <default><loopback/></default>
        </switch>
        <payloadFactory media-type="json">
          <format>{"refresh_token":"$1"}</format>
          <args><arg expression="json-eval($.token)" evaluator="json"/></args>
        </payloadFactory>
        <enrich>
          <source type="inline" clone="true"><i xmlns="">x</i></source>
          <target type="custom" action="child" xpath="//sf:id"/>
        </enrich>
        <enrich>
          <source type="property" property="ORIG"/>
          <target type="body"/>
        </enrich>
        <call blocking="true">
          <endpoint>
            <http method="get" uri-template="{+uri.var.apiUrl}/job/{+uri.var.jobId}"/>
          </endpoint>
        </call>
        <respond/>
      </inSequence>
      <outSequence><send/></outSequence>
      <endpoint><http method="post" uri-template="http://127.0.0.1:9/backend"/></endpoint>
    </target>
  </proxy>
  <proxy name="byKey"><target endpoint="echoEP"/></proxy>
  <import name="salesforcebulk" package="org.wso2.carbon.connector" status="enabled"/>
  <endpoint name="jobEP">
    <http method="get" uri-template="{uri.var.apiUrl}/job/{uri.var.jobId}">
      <timeout><duration>2500</duration><responseAction>discard</responseAction></timeout>
    </http>
  </endpoint>
  <endpoint name="echoEP"><address uri="http://127.0.0.1:9/echo" format="pox"/></endpoint>
  <api name="jobs" context="/jobs" version="v1" version-type="url">
    <resource methods="GET POST" uri-template="/{jobId}?q={q}" faultSequence="errSeq">
      <inSequence><call><endpoint key="jobEP"/></call><respond/></inSequence>
      <outSequence><send><endpoint key="echoEP"/></send></outSequence>
    </resource>
    <resource url-mapping="/echo/*" inSequence="errSeq"/>
  </api>
</definitions>
"""

EQUIVALENT_YAML = r"""
namespaces: {sf: "urn:partner.soap.sforce.com"}
localEntries:
  greeting: hello
  tree: {xml: "<t>1</t>"}
sequences:
  fault:
    - log: {level: full}
    - drop
  errSeq:
    onError: fault
    mediators:
      - log:
          level: custom
          separator: ";"
          properties:
            - {name: code, expression: "get-property('ERROR_CODE')"}
            - {name: fixed, value: x}
      - payloadFactory:
          media-type: xml
          format: <e>$1</e>
          args:
            - expression: get-property('ERROR_MESSAGE')
            - value: v
      - respond
proxies:
  everything:
    transports: [https, http]
    startOnLoad: true
    faultSequence: errSeq
    inSequence:
      onError: errSeq
      mediators:
        - property: {name: apiUrl, expression: //apiUrl/text()}
        - property: {name: id, expression: //s/text(), pattern: 'ID-(\d+)', group: 1}
        - property: {name: HTTP_SC, value: 404, scope: axis2, type: INTEGER}
        - property: {name: tree, xml: "<t>1</t>"}
        - property: {name: Content-Encoding, action: remove, scope: transport}
        - header: {name: X-SFDC-Session, expression: "get-property('uri.var.accessToken')", scope: transport}
        - header: {name: "sf:SessionHeader", value: t}
        - header: {name: Cache-Control, action: remove, scope: transport}
        - filter:
            source: $ctx:ct
            regex: text/csv
            then: [log]
            else:
              - sequence: errSeq
        - filter: {xpath: //sf:id, then: errSeq}
        - switch:
            source: $trp:Action
            cases:
              - regex: urn:createJob
                mediators:
                  - salesforcebulk.init: {apiUrl: "{$ctx:apiUrl}", apiVersion: "34.0"}
                  - salesforcebulk.createJob: {operation: "{$ctx:operation}", object: Contact}
              - regex: urn:(get|update)Job
                mediators: [drop]
            default: [loopback]
        - payloadFactory:
            media-type: json
            format: '{"refresh_token":"$1"}'
            args:
              - {expression: json-eval($.token), evaluator: json}
        - enrich:
            source: {type: inline, clone: true, inline: "<i>x</i>"}
            target: {type: custom, action: child, xpath: //sf:id}
        - enrich:
            source: {type: property, property: ORIG}
            target: {type: body}
        - call:
            blocking: true
            endpoint:
              http: {method: get, uri-template: "{+uri.var.apiUrl}/job/{+uri.var.jobId}"}
        - respond
    outSequence: [send]
    endpoint:
      http: {method: post, uri-template: "http://127.0.0.1:9/backend"}
  byKey:
    endpoint: {key: echoEP}
imports:
  salesforcebulk: {package: org.wso2.carbon.connector, status: enabled}
endpoints:
  jobEP:
    http: {method: get, uri-template: "{uri.var.apiUrl}/job/{uri.var.jobId}", timeout: 2.5, responseAction: discard}
  echoEP:
    address: {uri: "http://127.0.0.1:9/echo", format: pox}
apis:
  jobs:
    context: /jobs
    version: v1
    version-type: url
    resources:
      - methods: [GET, POST]
        uri-template: "/{jobId}?q={q}"
        faultSequence: errSeq
        inSequence:
          - call: {endpoint: {key: jobEP}}
          - respond
        outSequence:
          - send: {endpoint: {key: echoEP}}
      - url-mapping: /echo/*
        inSequence: errSeq
"""


def test_yaml_and_synapse_xml_build_equal_mediator_trees(tmp_path):
    connectors = {"salesforcebulk": Connector.load()}
    from_xml = load_paths([write(tmp_path, "everything.xml", EQUIVALENT_XML)], connectors=connectors)
    from_yaml = load_paths([write(tmp_path, "everything.yaml", EQUIVALENT_YAML)], connectors=connectors)
    for table in ("proxies", "sequences", "local_entries", "apis", "endpoints"):
        assert dump(getattr(from_yaml, table)) == dump(getattr(from_xml, table)), table
    assert {k: v[0] for k, v in from_yaml.imports.items()} == {k: v[0] for k, v in from_xml.imports.items()}
    assert set(from_xml.apis) == {"jobs:vv1"} and set(from_xml.endpoints) == {"jobEP", "echoEP"}
    api_tree = repr(dump(from_yaml.apis))
    assert (
        "/{jobId}?q={q}" in api_tree
        and "'discard'" in repr(dump(from_yaml.endpoints))
        and "echoEP" in api_tree
    )
    # the dump sees real structure (a changed detail must show)
    tree = dump(from_yaml.proxies["everything"])
    assert "urn:(get|update)Job" in repr(tree) and "{+uri.var.apiUrl}/job/{+uri.var.jobId}" in repr(tree)
    changed = load_paths(
        [write(tmp_path, "changed.yaml", EQUIVALENT_YAML.replace("regex: text/csv", "regex: text/xml"))]
    )
    assert dump(changed.proxies) != dump(from_xml.proxies)


def test_the_example_flows_validate(tmp_path):
    examples = Path(__file__).resolve().parents[2] / "examples"
    cfg = load_paths([examples / "flows.yaml"], connectors={"salesforcebulk": Connector.load()})
    assert {"createJob", "getJob", "updateJob", "dispatcher"} <= set(cfg.proxies)
