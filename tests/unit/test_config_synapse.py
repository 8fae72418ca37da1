"""Synapse XML front-end: reading rules of synapse.md §2-3, and errors that name file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from lxml import etree

from sfbulk import mediators as m
from sfbulk.config import load_paths
from sfbulk.connector.connection import Connector
from sfbulk.errors import ConfigError, ConfigErrors

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NS = 'xmlns="http://ws.apache.org/ns/synapse"'


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def load_xml(tmp_path: Path, text: str, name: str = "cfg.xml", **kw):
    return load_paths([write(tmp_path, name, text)], **kw)


def in_sequence(tmp_path: Path, mediators: str, *, extra_ns: str = "") -> tuple:
    cfg = load_xml(
        tmp_path,
        f"""
        <proxy {NS} {extra_ns} name="p">
          <target><inSequence>
        {textwrap.indent(textwrap.dedent(mediators), "    ")}
          </inSequence></target>
        </proxy>
        """,
    )
    return cfg.proxies["p"].in_sequence.mediators


def errors_of(exc_info: pytest.ExceptionInfo) -> list[ConfigError]:
    exc = exc_info.value
    return exc.errors if isinstance(exc, ConfigErrors) else [exc]


# --- the seed ------------------------------------------------------------------------------------


def test_the_seed_proxy_loads_verbatim_stray_text_included():
    seed = EXAMPLES / "synapse" / "salesforcebulk_createJob.xml"
    assert "</salesforcebulk.init> it>" in seed.read_text()  # really the unchanged seed
    cfg = load_paths([seed], connectors={"salesforcebulk": Connector.load()})
    proxy = cfg.proxies["salesforcebulk_createJob"]
    assert proxy.transports == ("https", "http") and proxy.start_on_load is True
    seq = proxy.in_sequence
    assert isinstance(seq, m.Sequence) and seq.on_error == "faultHandlerSeq"
    kinds = [type(x).__name__ for x in seq.mediators]
    assert kinds == ["PropertyMediator"] * 12 + ["ConnectorOperationMediator"] * 2 + ["RespondMediator"]
    init, create = seq.mediators[12], seq.mediators[13]
    assert (init.connector, init.operation) == ("salesforcebulk", "init")
    assert sorted(init.params) == sorted(
        [
            "apiVersion",
            "accessToken",
            "apiUrl",
            "refreshToken",
            "clientId",
            "clientSecret",
            "intervalTime",
            "registryPath",
        ]
    )
    assert create.operation == "createJob" and create.params["object"].text == "{$ctx:object}"
    assert seq.mediators[0].name == "apiVersion" and seq.mediators[0].expression.text == "//apiVersion/text()"
    assert isinstance(proxy.out_sequence.mediators[0], m.SendMediator)
    assert proxy.source.endswith("salesforcebulk_createJob.xml:2")


# --- list reading rules ----------------------------------------------------------------------------


def test_text_comments_and_description_are_not_mediators(tmp_path):
    meds = in_sequence(
        tmp_path,
        """
        stray text
        <!-- a comment -->
        <description>ignored</description>
        <log/> more text <drop/>
        """,
    )
    assert [type(x) for x in meds] == [m.LogMediator, m.DropMediator]


def test_unknown_element_is_synapses_error_with_file_and_line(tmp_path):
    with pytest.raises(ConfigErrors) as info:
        in_sequence(tmp_path, "<log/>\n<frobnicate/>")
    (error,) = errors_of(info)
    assert (
        "Unknown mediator referenced by configuration element : {http://ws.apache.org/ns/synapse}frobnicate"
        in str(error)
    )
    assert error.file.endswith("cfg.xml") and error.line == 4


def test_root_outside_the_synapse_namespace_is_explained(tmp_path):
    with pytest.raises(ConfigError, match='add xmlns="http://ws.apache.org/ns/synapse"'):
        load_xml(tmp_path, '<proxy name="p"><target><inSequence/></target></proxy>')


def test_malformed_xml_names_file_and_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_xml(tmp_path, f'<proxy {NS} name="p">\n<target>\n</proxy>\n')
    (error,) = errors_of(info)
    assert error.file.endswith("cfg.xml") and error.line == 3


def test_all_errors_are_collected_and_nothing_loads(tmp_path):
    good = write(tmp_path, "good.xml", f'<sequence {NS} name="s"><log/></sequence>')
    bad = write(
        tmp_path,
        "bad.xml",
        f"""
        <definitions {NS}>
          <sequence name="a"><property name="x" expression="//a[["/></sequence>
          <sequence name="b"><filter/></sequence>
        </definitions>
        """,
    )
    with pytest.raises(ConfigErrors) as info:
        load_paths([good, bad])
    errors = errors_of(info)
    assert [(e.file.endswith("bad.xml"), e.line) for e in errors] == [(True, 2), (True, 3)]
    assert "property@expression" in str(errors[0])


def test_duplicate_names_across_files_are_rejected(tmp_path):
    a = write(tmp_path, "a.xml", f'<sequence {NS} name="s"><log/></sequence>')
    b = write(tmp_path, "b.xml", f'<sequence {NS} name="s"><drop/></sequence>')
    with pytest.raises(ConfigErrors, match=r"sequence 's' is already defined at .*a.xml:1"):
        load_paths([a, b])


def test_a_folder_is_read_whole_and_sample_requests_are_skipped(tmp_path):
    write(tmp_path, "p.xml", f'<proxy {NS} name="p"><target inSequence="s"/></proxy>')
    write(tmp_path, "sub/s.xml", f'<sequence {NS} name="s"><respond/></sequence>')
    write(tmp_path, "request.xml", "<createJob><object>Contact</object></createJob>")
    cfg = load_paths([tmp_path])
    assert cfg.proxies["p"].in_sequence == "s" and "s" in cfg.sequences
    assert any("request.xml" in w and "skipped" in w for w in cfg.warnings)
    with pytest.raises(ConfigError, match="not a Synapse configuration element"):
        load_paths([tmp_path / "request.xml"])  # named explicitly: an error


def test_definitions_local_entries_and_target_keys(tmp_path):
    cfg = load_xml(
        tmp_path,
        f"""
        <definitions {NS}>
          <localEntry key="text">  plain text  </localEntry>
          <localEntry key="el"><a>x</a></localEntry>
          <sequence name="in" onError="err"><respond/></sequence>
          <sequence name="err"><drop/></sequence>
          <proxy name="p" transports="http" startOnLoad="TRUE">
            <target inSequence="in" faultSequence="err">
              <inSequence><drop/></inSequence>
            </target>
          </proxy>
          <proxy name="q" startOnLoad="no"><target><inSequence><log/></inSequence></target></proxy>
        </definitions>
        """,
    )
    assert cfg.local_entries["text"] == "plain text"
    # an element entry keeps its namespace: here the config's default one, as in Synapse
    assert etree.tostring(cfg.local_entries["el"]) == b'<a xmlns="http://ws.apache.org/ns/synapse">x</a>'
    proxy = cfg.proxies["p"]
    assert proxy.in_sequence == "in" and proxy.fault_sequence == "err"  # the attribute wins
    assert proxy.transports == ("http",) and proxy.start_on_load is True
    assert cfg.proxies["q"].start_on_load is False
    assert cfg.sequences["in"].on_error == "err"


# --- mediators -----------------------------------------------------------------------------------


def test_property_precedence_value_then_element_then_expression(tmp_path):
    a, b, c, d = in_sequence(
        tmp_path,
        """
        <property name="a" value="v" expression="//x"><inline/></property>
        <property name="b" expression="//x"><inline xmlns=""><y>1</y></inline></property>
        <property name="c" expression="//x" scope="axis2" type="STRING" pattern="ID-(\\d+)" group="1"/>
        <property name="d" action="remove" scope="transport"/>
        """,
    )
    assert a.value == "v" and a.expression is None and a.element is None
    assert etree.tostring(b.element) == b"<inline><y>1</y></inline>" and b.expression is None
    assert (
        c.expression.text == "//x"
        and c.scope == "axis2"
        and c.pattern.pattern == "ID-(\\d+)"
        and c.group == 1
    )
    assert d.action == "remove" and d.scope == "transport"


def test_property_without_a_value_is_an_error(tmp_path):
    with pytest.raises(ConfigErrors, match=r"cfg.xml:3: property: .*one of value, expression"):
        in_sequence(tmp_path, '<property name="x"/>')


def test_expressions_compile_at_load_with_the_prefixes_in_scope(tmp_path):
    (ok,) = in_sequence(
        tmp_path, '<property name="a" expression="//sf:id/text()"/>', extra_ns='xmlns:sf="urn:sf"'
    )
    assert ok.expression.text == "//sf:id/text()"
    with pytest.raises(ConfigErrors) as info:
        in_sequence(tmp_path, '<property name="a" expression="//a[["/>')
    (error,) = errors_of(info)
    assert error.line == 3 and error.field == "property@expression"


def test_filter_forms(tmp_path):
    f1, f2, f3 = in_sequence(
        tmp_path,
        """
        <filter xpath="true()" source="$ctx:a" regex="x"><log/></filter>
        <filter source="$ctx:ct" regex="text/csv"><then><drop/></then><else><respond/></else></filter>
        <filter source="$ctx:a" regex="b"><then sequence="s1"/><else sequence="s2"/></filter>
        """,
    )
    assert f1.xpath.text == "true()" and f1.source is None and [type(x) for x in f1.then] == [m.LogMediator]
    assert f1.else_ is None
    assert (
        f2.regex.pattern == "text/csv"
        and type(f2.then[0]) is m.DropMediator
        and type(f2.else_[0]) is m.RespondMediator
    )
    assert (f3.then_sequence, f3.else_sequence) == ("s1", "s2")


def test_switch_cases_in_order_and_only_the_first_default(tmp_path):
    (sw,) = in_sequence(
        tmp_path,
        """
        <switch source="$trp:Action">
          <case regex="urn:createJob"><log/></case>
          <case regex="urn:createJobToUploadBatchFile"><drop/></case>
          <default><respond/></default>
          <default><drop/></default>
        </switch>
        """,
    )
    assert [c.regex.pattern for c in sw.cases] == ["urn:createJob", "urn:createJobToUploadBatchFile"]
    assert [type(x) for x in sw.default] == [m.RespondMediator]


def test_payload_factory_format_capture(tmp_path):
    synapse_ns, plain, own_ns, as_json = in_sequence(
        tmp_path,
        """
        <payloadFactory><format><r>$1</r></format><args><arg value="x"/></args></payloadFactory>
        <payloadFactory media-type="xml">
          <format>
            <r xmlns="">
              <a>$1</a>
            </r>
          </format>
          <args><arg expression="//a" evaluator="xml"/></args>
        </payloadFactory>
        <payloadFactory><format><jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload"><operation>$1</operation></jobInfo></format>
          <args><arg expression="get-property('uri.var.operation')"/></args></payloadFactory>
        <payloadFactory media-type="json"><format>{"refresh_token":"$1"}</format>
          <args><arg expression="json-eval($.token)" evaluator="json" literal="true"/></args></payloadFactory>
        """,
    )
    # PF3: prefix-less elements in a Synapse config land in the Synapse namespace
    assert synapse_ns.format == '<r xmlns="http://ws.apache.org/ns/synapse">$1</r>'
    assert plain.format == "<r><a>$1</a></r>"  # whitespace-only text removed
    assert own_ns.format.startswith('<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload">')
    assert as_json.media_type == "json" and as_json.format == '{"refresh_token":"$1"}'
    assert as_json.args[0].literal is True and as_json.args[0].evaluator == "json"


def test_connector_operation_parameters(tmp_path):
    (op,) = in_sequence(
        tmp_path,
        """
        <salesforcebulk.createJob>
          <operation>{$ctx:operation}</operation>
          <object>Contact</object>
          <contentType></contentType>
          <externalIdFieldName> {$ctx:a} </externalIdFieldName>
          <concurrencyMode>Se<ignored>child text</ignored>rial</concurrencyMode>
        </salesforcebulk.createJob>
        """,
    )
    assert isinstance(op, m.ConnectorOperationMediator) and op.operation == "createJob"
    assert "contentType" not in op.params  # empty text: not passed at all
    assert op.params["operation"].literal is None or op.params["operation"].expression is not None
    assert op.params["externalIdFieldName"].text == " {$ctx:a} "  # surrounding blanks: a literal
    assert op.params["concurrencyMode"].text == "Serial"  # direct text only


def test_unknown_connector_operation_is_caught_at_load_when_connectors_are_known(tmp_path):
    text = f'<sequence {NS} name="s"><salesforcebulk.createJobs><object>A</object></salesforcebulk.createJobs></sequence>'
    with pytest.raises(ConfigErrors, match=r"cfg.xml:1: .*has no operation 'createJobs'"):
        load_xml(tmp_path, text, connectors={"salesforcebulk": Connector.load()})
    assert "s" in load_xml(tmp_path, text).sequences  # without connectors: checked when it runs


def test_call_send_header_log_enrich_sequence(tmp_path):
    call, send, send_ep, hdr, soap_hdr, log, enrich, ref = in_sequence(
        tmp_path,
        """
        <call blocking="true"><endpoint>
          <http method="get" uri-template="{+uri.var.apiUrl}/job/{+uri.var.jobId}"><timeout><duration>5000</duration></timeout></http>
          <property name="uri.var.x" value="1"/>
        </endpoint></call>
        <send/>
        <send><endpoint><http method="POST" uri-template="http://127.0.0.1:1/x"/></endpoint></send>
        <header name="X-SFDC-Session" expression="get-property('uri.var.accessToken')" scope="transport"/>
        <header name="sf:SessionHeader" value="t"/>
        <log level="custom" separator=";"><property name="a" value="1"/><property name="b" expression="$ctx:b"/></log>
        <enrich><source type="body" clone="false"/><target type="property" property="ORIG"/></enrich>
        <sequence key="other"/>
        """,
        extra_ns='xmlns:sf="urn:partner.soap.sforce.com"',
    )
    assert call.blocking is True and call.endpoint.method == "GET" and call.endpoint.timeout == 5.0
    assert call.endpoint.uri_template == "{+uri.var.apiUrl}/job/{+uri.var.jobId}"
    assert call.endpoint.properties == {"uri.var.x": "1"}
    assert send.endpoint is None and send_ep.endpoint.method == "POST"
    assert hdr.scope == "transport" and hdr.expression.text == "get-property('uri.var.accessToken')"
    assert soap_hdr.namespace == "urn:partner.soap.sforce.com"
    assert log.level == "custom" and log.separator == ";" and [p.name for p in log.properties] == ["a", "b"]
    assert enrich.source.type == "body" and enrich.source.clone is False and enrich.target.property == "ORIG"
    assert isinstance(ref, m.SequenceReference) and ref.key == "other"


def test_unsupported_elements_fail_clearly(tmp_path):
    with pytest.raises(ConfigErrors) as info:
        in_sequence(
            tmp_path,
            """
            <call><endpoint><loadbalance/></endpoint></call>
            <call><endpoint key-expression="$ctx:ep"/></call>
            <call-template target="t"/>
            <sequence/>
            """,
        )
    messages = [e.message for e in errors_of(info)]
    assert [e.line for e in errors_of(info)] == [4, 5, 6, 7]
    assert "<loadbalance> endpoints are not supported" in messages[0] and "key-expression" in messages[1]
    assert "call-template" in messages[2] and "needs a 'key'" in messages[3]


def test_all_examples_load_together():
    from sfbulk.connector.connection import bundled_connectors  # examples/bulk2 uses salesforcebulkv2

    cfg = load_paths([EXAMPLES, EXAMPLES / "synapse"], connectors=bundled_connectors())
    assert {
        "salesforcebulk_createJob",
        "salesforcebulk_dispatcher",
        "createJob",
        "getJob",
        "updateJob",
    } <= set(cfg.proxies)
    assert {"faultHandlerSeq", "jobFaultHandler", "salesforcebulkInit"} <= set(cfg.sequences)
    assert [w for w in cfg.warnings if "skipped" not in w] == []
