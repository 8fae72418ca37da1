"""Read-only and compound fields: a row that sets one fails on its own, in a Completed batch.

Salesforce answers such a row ``INVALID_FIELD_FOR_INSERT_UPDATE:Unable to create/update fields: Name.
Please check the security settings of this field and verify that it is read/write for your profile
or permission set.:Name --`` (WSO2's documented sample shows the batch Completed with the rows
failed), while a field it does not know fails the whole batch (``Field name not found``).
"""

from __future__ import annotations

import csv
import io
from importlib import resources
from pathlib import Path

import pytest
import yaml
from helpers import Bulk, parse  # type: ignore[import-not-found]
from lxml import etree

from sfbulk.emulator.schema import Schema, SchemaError
from sfbulk.emulator.store import Store

MESSAGE = (
    "Unable to create/update fields: {}. Please check the security settings of this field and verify that "
    "it is read/write for your profile or permission set."
)


def _error(fields: str) -> str:
    return f"INVALID_FIELD_FOR_INSERT_UPDATE:{MESSAGE.format(fields)}:{fields.replace(', ', ',')} --"


def _results(bulk: Bulk, job: str, batch: str) -> list[dict[str, str]]:
    info = bulk.wait(job, batch)
    assert info["state"] == "Completed", info
    return list(csv.DictReader(io.StringIO(bulk.get(f"/job/{job}/batch/{batch}/result").text)))


def _query(bulk: Bulk, obj: str, soql: str) -> list[dict[str, str]]:
    job = bulk.create_job("query", obj)
    batch = bulk.add_batch(job, soql.encode())
    assert bulk.wait(job, batch)["state"] == "Completed"
    result_id = etree.fromstring(bulk.get(f"/job/{job}/batch/{batch}/result").content)[0].text
    text = bulk.get(f"/job/{job}/batch/{batch}/result/{result_id}").text
    return [] if text.startswith("Records not found") else list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("obj", ["Contact", "Lead"])
def test_compound_name_fails_the_rows_that_set_it_and_is_computed(emulator, obj: str) -> None:
    bulk = Bulk(emulator.base_url, emulator.issue_token())
    job = bulk.create_job("insert", obj)
    tag = f"Ro{obj}"
    company = ",Company" if obj == "Lead" else ""
    acme = ",Acme" if obj == "Lead" else ""
    data = (
        f"FirstName,LastName{company},Name\nAnn,{tag}{acme},\nBob,{tag}{acme},Bob {tag}\n,{tag}{acme},#N/A\n"
        f"Cy,{tag}{acme},\n"
    ).encode()
    rows = _results(bulk, job, bulk.add_batch(job, data))
    assert [r["Success"] for r in rows] == ["true", "false", "false", "true"]
    assert rows[1]["Error"] == rows[2]["Error"] == _error("Name")  # clearing it (#N/A) is setting it too
    assert rows[1]["Id"] == rows[2]["Id"] == ""
    stored = _query(
        bulk, obj, f"SELECT Name, FirstName FROM {obj} WHERE LastName = '{tag}' ORDER BY FirstName"
    )
    assert [r["Name"] for r in stored] == [f"Ann {tag}", f"Cy {tag}"]
    # filter and order on the compound field like on any other
    assert _query(bulk, obj, f"SELECT Id FROM {obj} WHERE Name = 'cy {tag}'") != []
    if obj == "Contact":  # through a relationship path too
        case = bulk.create_job("insert", "Case")
        assert (
            _results(
                bulk, case, bulk.add_batch(case, f"Subject,ContactId\nRoCase,{rows[0]['Id']}\n".encode())
            )[0]["Success"]
            == "true"
        )
        assert _query(bulk, "Case", "SELECT Contact.Name FROM Case WHERE Subject = 'RoCase'") == [
            {"Contact.Name": f"Ann {tag}"}
        ]


def test_system_fields_and_several_read_only_fields_in_one_row(emulator) -> None:
    bulk = Bulk(emulator.base_url, emulator.issue_token())
    job = bulk.create_job("insert", "Contact")
    data = (
        b"LastName,CreatedDate,SystemModstamp,LastModifiedDate,CreatedById,Name,Email\n"
        b"RoSys1,2024-01-01T00:00:00Z,,,,,\n"
        b"RoSys2,,2024-01-01T00:00:00Z,,,,\n"
        b"RoSys3,,,2024-01-01T00:00:00Z,005000000000001AAA,,\n"
        b"RoSys4,,,,,X Y,not-an-email\n"
        b"RoSys5,,,,,,a@example.com\n"
    )
    rows = _results(bulk, job, bulk.add_batch(job, data))
    assert [r["Error"] for r in rows] == [
        _error("CreatedDate"),
        _error("SystemModstamp"),
        _error("LastModifiedDate, CreatedById"),
        _error("Name"),  # the read-only error wins over the bad email of the same row
        "",
    ]
    blank = _results(bulk, job, bulk.add_batch(job, b"LastName,CreatedDate,name\nRoSys6,,\nRoSys7,,x\n"))
    assert blank[0]["Success"] == "true"  # an empty cell sets nothing: no error
    assert blank[1]["Error"] == _error("Name")  # named as the schema spells it


def test_read_only_fields_in_xml_and_json_batches_and_on_update(emulator) -> None:
    bulk = Bulk(emulator.base_url, emulator.issue_token())
    job = bulk.create_job("insert", "Contact", "JSON")
    resp = bulk.post(
        f"/job/{job}/batch",
        b'[{"LastName": "RoJson", "Name": "A B"}, {"LastName": "RoJson2"}, '
        b'{"LastName": "RoJson3", "Name": null}]',
        "application/json",
    )
    batch = resp.json()["id"]
    assert bulk.wait(job, batch, as_json=True)["state"] == "Completed"
    rows = bulk.get(f"/job/{job}/batch/{batch}/result", "application/json").json()
    assert [r["success"] for r in rows] == [False, True, False]
    assert rows[0]["errors"] == [
        {
            "statusCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
            "message": MESSAGE.format("Name"),
            "fields": ["Name"],
        }
    ]
    assert rows[2]["errors"][0]["fields"] == ["Name"]  # null is a value too: clearing it is setting it

    xml_job = bulk.create_job("insert", "Lead", "XML")
    body = (
        b'<sObjects xmlns="http://www.force.com/2009/06/asyncapi/dataload"><sObject><LastName>RoXml</LastName>'
        b"<Company>C</Company><Name>N</Name></sObject></sObjects>"
    )
    batch = bulk.add_batch(xml_job, body, "application/xml")
    assert bulk.wait(xml_job, batch)["state"] == "Completed"
    result = etree.fromstring(bulk.get(f"/job/{xml_job}/batch/{batch}/result").content)
    ns = {"a": "http://www.force.com/2009/06/asyncapi/dataload"}
    assert (
        result.findtext("a:result/a:errors/a:statusCode", namespaces=ns) == "INVALID_FIELD_FOR_INSERT_UPDATE"
    )
    assert result.findtext("a:result/a:success", namespaces=ns) == "false"

    new_id = rows[1]["id"]
    update = bulk.create_job("update", "Contact")
    rows_csv = _results(
        bulk, update, bulk.add_batch(update, f"Id,Name,Title\n{new_id},Z,T\n{new_id},,T2\n".encode())
    )
    assert [r["Error"] for r in rows_csv] == [_error("Name"), ""]
    assert _query(bulk, "Contact", f"SELECT Title, Name FROM Contact WHERE Id = '{new_id}'") == [
        {"Title": "T2", "Name": "RoJson2"}
    ]


def test_unknown_fields_still_fail_the_whole_batch(emulator) -> None:
    bulk = Bulk(emulator.base_url, emulator.issue_token())
    job = bulk.create_job("insert", "Contact")
    info = bulk.wait(job, bulk.add_batch(job, b"LastName,Name,xyz\nRoUnknown,,1\n"))
    assert info["state"] == "Failed"
    assert info["stateMessage"] == "InvalidBatch : Field name not found : xyz"
    account = bulk.create_job("insert", "Account")  # Account.Name is an ordinary required field
    rows = _results(bulk, account, bulk.add_batch(account, b"Name\nRo Account\n"))
    assert rows[0]["Success"] == "true"
    assert parse(bulk.close(job).content)["state"] == "Closed"


def test_schema_files_declare_read_only_and_compound_fields(tmp_path: Path) -> None:
    extra = tmp_path / "schema.yaml"
    extra.write_text(
        "objects:\n  Invoice__c:\n    fields:\n      Total__c: {type: currency, readOnly: true}\n"
        "      Label__c: {type: string, compoundOf: [Name, Invoice_Number__c]}\n"
    )
    invoice = Schema.load(extra).get("Invoice__c")
    assert invoice is not None
    total, label = invoice.field("Total__c"), invoice.field("Label__c")
    assert total is not None and total.read_only and not total.writable
    assert label is not None and label.read_only and label.compound_of == ("Name", "Invoice_Number__c")
    contact = Schema.load(None).get("Contact")
    assert contact is not None and contact.field("name").compound_of == ("FirstName", "LastName")  # type: ignore[union-attr]
    for bad in ("[Nope]", "[Amount__c]"):
        extra.write_text(
            f"objects:\n  Invoice__c:\n    fields:\n      L__c: {{type: string, compoundOf: {bad}}}\n"
        )
        with pytest.raises(SchemaError, match="compoundOf needs a text field"):
            Schema.load(extra)
    extra.write_text(
        "objects:\n  Invoice__c:\n    fields:\n      L__c: {type: string, compoundOf: [Name], "
        "externalId: true}\n"
    )
    with pytest.raises(SchemaError, match="a compoundOf or formula field is computed"):
        Schema.load(extra)
    store = Store(tmp_path / "emulator.db", Schema.load(None))
    try:  # computed by queries, not stored: inserts pay nothing for it
        columns = {row[1] for row in store.reader().execute('PRAGMA table_xinfo("sobj_Contact")')}
    finally:
        store.close()
    assert "Name" not in columns and {"FirstName", "LastName"} <= columns


def test_formula_fields_are_read_only_and_computed_by_queries(emulator) -> None:
    bulk = Bulk(emulator.base_url, emulator.issue_token())
    job = bulk.create_job("insert", "Opportunity")
    data = (
        b"Name,StageName,CloseDate,Amount,Probability,ExpectedRevenue\n"
        b"RoFormula1,Prospecting,2025-01-31,2000,25,\n"
        b"RoFormula2,Prospecting,2025-01-31,2000,25,500\n"
        b"RoFormula3,Prospecting,2025-01-31,7,,\n"
    )
    rows = _results(bulk, job, bulk.add_batch(job, data))
    assert [r["Error"] for r in rows] == ["", _error("ExpectedRevenue"), ""]
    stored = _query(
        bulk,
        "Opportunity",
        "SELECT Name, ExpectedRevenue FROM Opportunity WHERE Name LIKE 'RoFormula%' "
        "AND ExpectedRevenue != null ORDER BY ExpectedRevenue DESC",
    )
    assert stored == [{"Name": "RoFormula1", "ExpectedRevenue": "500.0"}]  # a null part gives null


@pytest.mark.parametrize(
    ("formula", "problem"),
    [
        ("Amount__c * 2", None),
        ("(Amount__c + 1) / -3", None),
        ("Amount__c *", "expected a number or a field"),
        ("(Amount__c", "missing ')'"),
        ("Amount__c 2", "unexpected '2'"),
        ("Name * 2", "Name is not a stored number field"),
        ("Amount__c ; DROP TABLE x", "unexpected text"),
    ],
)
def test_formulas_in_schema_files_are_checked(tmp_path: Path, formula: str, problem: str | None) -> None:
    extra = tmp_path / "schema.yaml"
    extra.write_text(
        f'objects:\n  Invoice__c:\n    fields:\n      F__c: {{type: double, formula: "{formula}"}}\n'
    )
    if problem is None:
        field = Schema.load(extra).get("Invoice__c").field("F__c")  # type: ignore[union-attr]
        assert field is not None and field.read_only and field.computed
    else:
        with pytest.raises(SchemaError, match=problem.replace("(", r"\(").replace(")", r"\)")):
            Schema.load(extra)


def test_the_built_in_schema_reads_the_same_with_libyaml_and_without() -> None:
    """The emulator reads its own schema.yaml with libyaml when present (start-up time)."""
    text = resources.files("sfbulk.emulator").joinpath("schema.yaml").read_text(encoding="utf-8")
    assert yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) == yaml.safe_load(text)
    assert Schema.load(None).get("Contact") is not None
