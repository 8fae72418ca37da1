"""The bundled templates: escaping, omitted optional elements, Salesforce's element order, enums."""

from __future__ import annotations

import pytest
from lxml import etree

from sfbulk.connector.connection import Connector
from sfbulk.errors import ParameterError

NS = "{http://www.force.com/2009/06/asyncapi/dataload}"


@pytest.fixture(scope="module")
def connector():
    return Connector.load()


def render(connector, name, **params):
    op = connector.operation(name)
    return op.render(op.bind(params))


def children(body: bytes) -> list[tuple[str, str]]:
    root = etree.fromstring(body)
    assert root.tag == NS + "jobInfo"
    return [(child.tag.replace(NS, ""), child.text or "") for child in root]


def test_injection_attempt_ends_up_as_text(connector):
    hostile = "</object><operation>hardDelete</operation>"
    rendered = render(connector, "createJob", operation="insert", object=hostile, contentType="CSV")
    assert b"<operation>hardDelete</operation>" not in rendered.body
    assert b"&lt;/object&gt;&lt;operation&gt;hardDelete&lt;/operation&gt;" in rendered.body
    assert children(rendered.body) == [("operation", "insert"), ("object", hostile), ("contentType", "CSV")]


def test_quotes_and_ampersands_are_escaped(connector):
    rendered = render(connector, "createJob", operation="upsert", object="A&B", externalIdFieldName="x\"<y>'")
    assert dict(children(rendered.body))["externalIdFieldName"] == "x\"<y>'"
    assert b"A&amp;B" in rendered.body


def test_empty_optional_elements_are_omitted(connector):
    rendered = render(
        connector,
        "createJob",
        operation="insert",
        object="Contact",
        contentType="CSV",
        externalIdFieldName="",
        concurrencyMode=None,
        assignmentRuleId="",
    )
    assert b"externalIdFieldName" not in rendered.body
    assert b"concurrencyMode" not in rendered.body
    assert b"assignmentRuleId" not in rendered.body
    assert b"\n\n" not in rendered.body  # no blank lines left by omitted elements
    assert rendered.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<jobInfo')


def test_element_order_follows_the_jobinfo_schema(connector):
    rendered = render(
        connector,
        "createJob",
        operation="upsert",
        object="Contact",
        contentType="CSV",
        externalIdFieldName="Email",
        concurrencyMode="Serial",
        assignmentRuleId="01Q000000000001",
    )
    assert [tag for tag, _ in children(rendered.body)] == [
        "operation",
        "object",
        "externalIdFieldName",
        "concurrencyMode",
        "contentType",
        "assignmentRuleId",
    ]


def test_create_job_request_shape(connector):
    rendered = render(
        connector, "createJob", operation="query", object="Account", pkChunking="chunkSize=50000"
    )
    assert rendered.method == "POST"
    assert rendered.path == "/job"
    assert rendered.headers == {
        "Sforce-Enable-PKChunking": "chunkSize=50000",
        "Content-Type": "application/xml; charset=UTF-8",
    }


def test_pk_chunking_header_omitted_when_empty(connector):
    rendered = render(connector, "createJob", operation="query", object="Account")
    assert "Sforce-Enable-PKChunking" not in rendered.headers


def test_update_job_body_and_path(connector):
    rendered = render(connector, "updateJob", jobId="750000000000001AAA", state="Closed")
    assert rendered.path == "/job/750000000000001AAA"
    assert children(rendered.body) == [("state", "Closed")]


def test_get_job_has_no_body(connector):
    rendered = render(connector, "getJob", jobId="750000000000001AAA")
    assert (rendered.method, rendered.path, rendered.body) == ("GET", "/job/750000000000001AAA", None)
    assert "Content-Type" not in rendered.headers


@pytest.mark.parametrize("job_id", ["../x", "../../services/oauth2/token", "a/b", "x?y=1", "x#y", "%2e%2e"])
def test_job_id_cannot_escape_the_job_path(connector, job_id):
    path = render(connector, "getJob", jobId=job_id).path
    segment = path[len("/job/") :]
    assert path.startswith("/job/") and "/" not in segment and "?" not in segment and "#" not in segment


@pytest.mark.parametrize(
    ("name", "param", "value"),
    [
        ("createJob", "operation", "INSERT"),
        ("createJob", "contentType", "csv"),
        ("createJob", "concurrencyMode", "serial"),
        ("updateJob", "state", "Open"),
    ],
)
def test_undocumented_enum_values_go_to_salesforce_as_wso2_sends_them(connector, name, param, value):
    # Only URL values fault locally (WSO2 parity): Salesforce judges the value and its 400 is relayed.
    params = {
        "createJob": {"operation": "insert", "object": "Contact"},
        "updateJob": {"jobId": "750", "state": "Closed"},
    }[name]
    params[param] = value
    assert dict(children(render(connector, name, **params).body))[param] == value


def test_free_form_values_pass_through_for_salesforce_to_judge(connector):
    rendered = render(connector, "createJob", operation="insert", object="NoSuchObject__c")
    assert dict(children(rendered.body))["object"] == "NoSuchObject__c"
    assert render(connector, "getJob", jobId="INVALID").path == "/job/INVALID"


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("createJob", {"object": "Contact"}, [("object", "Contact")]),
        ("createJob", {"operation": "insert", "object": ""}, [("operation", "insert")]),
        ("createJob", {}, []),
        ("updateJob", {"jobId": "750"}, []),
    ],
)
def test_missing_body_values_are_omitted_and_the_request_still_built(connector, name, params, expected):
    assert children(render(connector, name, **params).body) == expected


@pytest.mark.parametrize(
    ("name", "params", "missing"),
    [
        ("getJob", {}, "jobId"),
        ("getBatchStatus", {"jobId": "750"}, "batchId"),
        ("getBulkQueryResults", {"jobId": "750", "batchId": "751", "resultId": ""}, "resultId"),
        ("addBatch", {"objects": "a\n1", "contentType": "text/csv"}, "jobId"),
    ],
)
def test_values_the_url_needs_are_required(connector, name, params, missing):
    with pytest.raises(ParameterError, match=f"'{missing}' is required") as info:
        render(connector, name, **params)
    assert info.value.code == 500101


def test_unknown_parameter_is_an_error(connector):
    with pytest.raises(ParameterError, match="unknown parameter 'objet'"):
        render(connector, "createJob", operation="insert", objet="Contact")


def test_header_values_cannot_inject_lines(connector):
    with pytest.raises(ParameterError, match="line breaks"):
        render(connector, "createJob", operation="query", object="A", pkChunking="true\r\nX-Evil: 1")


def test_add_batch_without_content_type_sends_xml_as_wso2(connector):
    rendered = render(
        connector, "addBatch", jobId="750", objects="<sObject><LastName>Ng</LastName></sObject>"
    )
    assert rendered.headers["Content-Type"] == "application/xml; charset=UTF-8"
    root = etree.fromstring(rendered.body)
    assert root.tag == NS + "sObjects" and root[0].tag == NS + "sObject"


@pytest.mark.parametrize(
    "objects",
    [
        None,
        "",
        "  ",
        "<objects><values> </values></objects>",
        "<objects/>",
        '<objects xmlns=""/>',
        "<values/>",
        "<objects><values/></objects>",
    ],
)
@pytest.mark.parametrize("content_type", ["text/csv", "application/xml", None])
def test_add_batch_without_records_sends_an_empty_body_for_salesforce_to_answer(
    connector, objects, content_type
):
    rendered = render(connector, "addBatch", jobId="750", objects=objects, contentType=content_type)
    assert rendered.body == b""
    assert rendered.headers["Content-Type"] == (content_type or "application/xml; charset=UTF-8")


def test_add_batch_csv_and_query_text_go_as_given(connector):
    csv = render(connector, "addBatch", jobId="750", objects="LastName\nNg\n", contentType="text/csv")
    assert (csv.headers["Content-Type"], csv.body) == ("text/csv", b"LastName\nNg")
    soql = render(connector, "addBatch", jobId="750", objects="SELECT Id FROM Contact", isQuery="true")
    assert (soql.headers["Content-Type"], soql.body) == (
        "application/xml; charset=UTF-8",
        b"SELECT Id FROM Contact",
    )
