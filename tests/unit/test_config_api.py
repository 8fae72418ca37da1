"""Loading REST APIs, named endpoints, connector imports and WSO2 deployment folders (Synapse XML
and YAML): what is built, and every error naming the file, line and what to do."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from sfbulk import mediators as m
from sfbulk.config import load_paths
from sfbulk.connector.connection import Connector
from sfbulk.errors import ConfigErrors
from sfbulk.mediators.api import Api
from sfbulk.mediators.http import AddressEndpoint, EndpointReference

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = ROOT / "examples" / "deployment"
NS = 'xmlns="http://ws.apache.org/ns/synapse"'


@pytest.fixture(scope="module")
def connectors():
    return {"salesforcebulk": Connector.load()}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def errors(info: pytest.ExceptionInfo[ConfigErrors]) -> list[str]:
    return [str(e) for e in info.value.errors]


def test_api_resources_sequences_and_endpoints_from_synapse_xml(tmp_path):
    cfg = load_paths(
        [
            write(
                tmp_path,
                "api.xml",
                f"""
                <api {NS} name="Orders" context="/orders" version="1.0" version-type="context">
                  <resource methods="GET" uri-template="/{{id}}" inSequence="getSeq" faultSequence="errSeq">
                    <inSequence><drop/></inSequence>
                  </resource>
                  <resource methods="POST PUT" url-mapping="/*">
                    <inSequence onError="errSeq">
                      <call><endpoint key="backendEP"/></call>
                      <send><endpoint><address uri="http://127.0.0.1:9/b" format="soap11"/></endpoint></send>
                    </inSequence>
                    <outSequence><send/></outSequence>
                    <faultSequence/>
                  </resource>
                </api>
                """,
            ),
            write(
                tmp_path,
                "ep.xml",
                f"""
                <endpoint {NS} name="backendEP">
                  <address uri="http://127.0.0.1:9/svc">
                    <timeout><duration>1500</duration><responseAction>fault</responseAction></timeout>
                    <suspendOnFailure><initialDuration>0</initialDuration></suspendOnFailure>
                  </address>
                </endpoint>
                """,
            ),
        ]
    )
    api = cfg.apis["Orders:v1.0"]
    assert isinstance(api, Api) and api.full_context == "/orders/1.0" and api.source.endswith("api.xml:1")
    get, post = api.resources
    assert get.methods == ("GET",) and get.uri_template == "/{id}"
    assert get.in_sequence == "getSeq" and get.fault_sequence == "errSeq"  # the key attribute wins
    assert post.methods == ("POST", "PUT") and post.url_mapping == "/*" and post.fault_sequence is None
    call, send = post.in_sequence.mediators
    assert isinstance(call.endpoint, EndpointReference) and call.endpoint.key == "backendEP"
    assert isinstance(send.endpoint, AddressEndpoint) and send.endpoint.format == "soap11"
    assert post.in_sequence.on_error == "errSeq" and isinstance(
        post.out_sequence.mediators[0], m.SendMediator
    )
    endpoint = cfg.endpoints["backendEP"]
    assert isinstance(endpoint, AddressEndpoint) and endpoint.name == "backendEP"
    assert (endpoint.uri, endpoint.timeout, endpoint.response_action) == (
        "http://127.0.0.1:9/svc",
        1.5,
        "fault",
    )
    assert any("sequence 'getSeq' is not defined" in w for w in cfg.warnings)


def test_api_errors_name_the_file_line_and_field(tmp_path):
    path = write(
        tmp_path,
        "bad.xml",
        f"""
        <definitions {NS}>
          <api name="A" context="/a" version-type="url">
            <resource uri-template="/x"/>
          </api>
          <api name="B" context="/b">
            <resource methods="GET FETCH" uri-template="/x"/>
            <resource uri-template="y"/>
            <resource uri-template="/x" url-mapping="/x"/>
          </api>
          <api name="C"><resource/></api>
          <api name="D" context="/d"/>
          <api name="E" context="/e"><handlers/><resource/><banana/></api>
          <endpoint name="bad"><loadbalance/></endpoint>
          <endpoint key="notAName"/>
          <template name="t"><sequence/></template>
          <proxy name="p"><target><inSequence><call><endpoint><http uri-template="/x">
            <timeout><duration>0</duration></timeout></http></endpoint></call></inSequence></target></proxy>
        </definitions>
        """,
    )
    with pytest.raises(ConfigErrors) as info:
        load_paths([path])
    found = errors(info)
    expected = [
        "bad.xml:2: api[A]: API 'A': version-type 'url' needs a version",
        "bad.xml:6: resource@methods: unknown method(s) FETCH",
        "bad.xml:7: resource@uri-template: uri-template 'y' must start with '/'",
        "bad.xml:8: resource@uri-template: a resource takes a uri-template or a url-mapping, not both",
        "bad.xml:10: api@context: a REST API 'C' needs a 'context' attribute",
        "bad.xml:11: API 'D' has no <resource>",
        "bad.xml:12: API 'E': unexpected element <banana>",
        "bad.xml:13: <loadbalance> endpoints are not supported by sfbulk",
        "bad.xml:14: endpoint@name: a named endpoint needs a 'name' attribute",
        "bad.xml:15: <template> artifacts (sequence/endpoint templates) are not supported by sfbulk",
        "bad.xml:17: timeout/duration must be a positive number",
    ]
    for text in expected:
        assert any(text in e for e in found), (text, found)
    assert len(found) == len(expected), found


def test_two_apis_at_the_same_path_and_duplicate_names_are_errors(tmp_path):
    write(
        tmp_path,
        "a.xml",
        f'<api {NS} name="A" context="/x"><resource><inSequence><drop/></inSequence></resource></api>',
    )
    write(
        tmp_path,
        "b.xml",
        f'<api {NS} name="B" context="/x"><resource><inSequence><drop/></inSequence></resource></api>',
    )
    write(tmp_path, "c.yaml", "apis:\n  A:\n    context: /y\n    resources: [{inSequence: [drop]}]\n")
    with pytest.raises(ConfigErrors) as info:
        load_paths([tmp_path])
    found = errors(info)
    assert any("API 'B' is served at /x, as API 'A'" in e for e in found), found
    assert any("c.yaml:2: API 'A' is already defined at" in e and "a.xml:1" in e for e in found), found


def test_an_unknown_connector_import_or_operation_names_it_and_points_to_the_docs(tmp_path, connectors):
    write(
        tmp_path,
        "imports/{org.wso2.carbon.connector}gmail.xml",
        f'<import {NS} name="gmail" package="org.wso2.carbon.connector" status="enabled"/>',
    )
    write(
        tmp_path,
        "p.xml",
        f"""
        <proxy {NS} name="p"><target><inSequence>
          <salesforce.query><queryString>SELECT Id FROM Account</queryString></salesforce.query>
        </inSequence></target></proxy>""",
    )
    with pytest.raises(ConfigErrors) as info:
        load_paths([tmp_path], connectors=connectors)
    found = errors(info)
    assert any(
        "gmail.xml:1" in e
        and "the WSO2 connector 'gmail' (org.wso2.carbon.connector) is not available" in e
        and "docs/connector.md" in e
        for e in found
    ), found
    assert any(
        "p.xml:2" in e and "unknown connector 'salesforce'" in e and "docs/connector.md" in e for e in found
    )


def test_a_disabled_import_disables_the_connectors_operations(tmp_path, connectors):
    write(
        tmp_path,
        "imp.xml",
        f'<import {NS} name="salesforcebulk" package="org.wso2.carbon.connector" status="disabled"/>',
    )
    write(
        tmp_path,
        "p.xml",
        f'<proxy {NS} name="p"><target><inSequence><salesforcebulk.getJob/></inSequence></target></proxy>',
    )
    with pytest.raises(ConfigErrors) as info:
        load_paths([tmp_path], connectors=connectors)
    (message,) = errors(info)
    assert "<salesforcebulk.getJob> uses connector 'salesforcebulk'" in message
    assert "imp.xml:1 disables" in message and 'status="enabled"' in message
    (tmp_path / "imp.xml").write_text((tmp_path / "imp.xml").read_text().replace("disabled", "enabled"))
    assert load_paths([tmp_path], connectors=connectors).imports["salesforcebulk"][0] == "enabled"


def test_the_example_deployment_loads_from_any_of_its_folders(tmp_path, connectors):
    server = tmp_path / "repository" / "deployment" / "server"
    shutil.copytree(DEPLOYMENT / "synapse-configs", server / "synapse-configs")
    (server / "synapse-configs" / "default" / "api" / "notes.yaml").write_text(
        "not: [an artifact"
    )  # MI reads XML only
    (server / "carbonapps").mkdir()
    (server / "carbonapps" / "x.xml").write_text("<not-synapse/>")  # outside synapse-configs: not read
    for folder in (DEPLOYMENT, DEPLOYMENT / "synapse-configs" / "default", tmp_path, server):
        cfg = load_paths([folder], connectors=connectors)
        assert set(cfg.apis) == {"BulkJobs:vv1"}, folder
        assert set(cfg.proxies) == {"BulkJobStatus"} and set(cfg.endpoints) == {"SalesforceJobEP"}
        assert {"sfInit", "jobsFault"} <= set(cfg.sequences)
        assert cfg.local_entries["sf.apiVersion"] == "34.0"
        assert cfg.imports["salesforcebulk"][0] == "enabled"
        if folder in (tmp_path, server):  # carbonapps/x.xml is beside the deployment, not in it
            assert (
                len(cfg.warnings) == 1 and "1 other .xml/.yaml file(s) in it are not read" in cfg.warnings[0]
            )
        else:
            assert not cfg.warnings, cfg.warnings


def test_a_deployment_inside_a_folder_is_read_as_a_deployment(tmp_path, connectors):
    shutil.copytree(DEPLOYMENT, tmp_path / "mi")
    (tmp_path / "mi" / "synapse-configs" / "default" / "scratch").mkdir()
    (tmp_path / "mi" / "synapse-configs" / "default" / "scratch" / "old.xml").write_text("<broken")
    write(tmp_path, "flows.yaml", "proxies:\n  other: {inSequence: [respond]}\n")
    cfg = load_paths([tmp_path], connectors=connectors)
    assert set(cfg.proxies) == {"BulkJobStatus", "other"} and set(cfg.apis) == {"BulkJobs:vv1"}


def test_deployment_artifacts_sfbulk_does_not_run_are_reported(tmp_path):
    root = tmp_path / "synapse-configs" / "default"
    write(root, "sequences/s.xml", f'<sequence {NS} name="s"><drop/></sequence>')
    write(root, "message-stores/store.xml", f'<messageStore {NS} name="store"/>')
    write(root, "tasks/t.xml", f'<task {NS} name="t"/>')
    with pytest.raises(ConfigErrors) as info:
        load_paths([tmp_path])
    found = errors(info)
    assert len(found) == 2 and any(
        "store.xml:1: <messageStore> artifacts (message stores)" in e for e in found
    )
    empty = tmp_path / "empty" / "synapse-configs" / "default"
    empty.mkdir(parents=True)
    with pytest.raises(ConfigErrors) as info:
        load_paths([empty])
    assert "holds no artifact" in errors(info)[0]


def test_unresolved_endpoint_references_are_warnings(tmp_path):
    cfg = load_paths(
        [
            write(
                tmp_path,
                "p.yaml",
                """
        proxies:
          p:
            inSequence: [{call: {endpoint: {key: nowhere}}}]
          q:
            endpoint: {key: alsoNowhere}
        """,
            )
        ]
    )
    assert any("endpoint 'nowhere' is not defined" in w for w in cfg.warnings)
    assert any("proxy q" in w and "endpoint 'alsoNowhere' is not defined" in w for w in cfg.warnings)


def test_yaml_apis_are_checked_by_the_schema(tmp_path):
    path = write(
        tmp_path,
        "api.yaml",
        """
        apis:
          A:
            resources: [{methods: [FETCH]}]
          B:
            context: b
            resources: []
        endpoints:
          e: {key: other}
        """,
    )
    with pytest.raises(ConfigErrors) as info:
        load_paths([path])
    found = errors(info)
    assert any("api.yaml:2: apis.A: 'context' is required" in e for e in found), found
    assert any("apis.A.resources[0].methods[0]: 'FETCH' is not one of" in e for e in found), found
    assert any("apis.B.context" in e for e in found) and any("apis.B.resources" in e for e in found), found
    assert any("endpoints.e" in e for e in found), found
