"""Checks before the job: headers Salesforce would refuse are refused here, naming file, column and flag."""

from __future__ import annotations

import io

import pytest

from sfbulk.bulk.csvsplit import CsvSplitter
from sfbulk.bulk.precheck import check_file, check_header, check_outputs
from sfbulk.errors import BulkInputError


@pytest.mark.parametrize("operation", ["update", "delete", "hardDelete"])
def test_update_and_delete_need_an_id_column(operation: str) -> None:
    with pytest.raises(
        BulkInputError,
        match=rf"c\.csv: --operation {operation} needs an Id column.*"
        r"the header has: FirstName, Email",
    ):
        check_header(["FirstName", "Email"], operation=operation, source="c.csv")
    plan = check_header(["id", "LastName"], operation=operation, source="c.csv")  # any case
    assert plan.keep is None and plan.send == ("id", "LastName")


def test_upsert_needs_the_external_id_column() -> None:
    with pytest.raises(
        BulkInputError,
        match=r"c\.csv: --operation upsert --external-id Email__c needs a "
        r"Email__c column.*LastName",
    ):
        check_header(["LastName"], operation="upsert", external_id="Email__c", source="c.csv")
    with pytest.raises(BulkInputError, match="--external-id"):
        check_header(["LastName"], operation="upsert")
    assert check_header(["email__C", "LastName"], operation="upsert", external_id="Email__c").keep is None


def test_duplicate_and_empty_names_are_refused_case_insensitively() -> None:
    with pytest.raises(
        BulkInputError,
        match=r"c\.csv: columns 1 and 3 are 'Email' and 'EMAIL' "
        r"\(Salesforce field names ignore case\)",
    ):
        check_header(["Email", "LastName", "EMAIL"], operation="insert", source="c.csv")
    with pytest.raises(BulkInputError, match=r"columns 1 and 2 are both 'Id'"):
        check_header(["Id", "Id"], operation="update")
    with pytest.raises(
        BulkInputError, match=r"c\.csv: column 3 of the header has no name.*LastName, \(empty\)"
    ):
        check_header(["FirstName", "LastName", ""], operation="insert", source="c.csv")
    with pytest.raises(BulkInputError, match="column 1 of the header has no name"):
        check_header(["  ", "LastName"], operation="insert")


def test_a_plain_insert_header_is_sent_unchanged() -> None:
    plan = check_header(["FirstName", "LastName"], operation="insert")
    assert plan.keep is None and plan.note == "" and plan.project(b"a,b\n") == b"a,b\n"


def test_a_success_file_updates_what_was_loaded() -> None:
    header = ["FirstName", "LastName", "sf__Id", "sf__Created", "sf__Error"]
    plan = check_header(header, operation="update", source="c.success.csv")
    assert plan.send == ("FirstName", "LastName", "Id") and plan.keep == (0, 1, 2)
    assert "sf__Id is sent as Id" in plan.note and "not sent: sf__Created, sf__Error" in plan.note
    assert plan.header_line() == b"FirstName,LastName,Id\n"
    body = b'Ann,"Lee, Jr",003000000000001AAA,true,\nBob,"two\nlines",003000000000002AAA,true,\n'
    assert plan.project(body) == b'Ann,"Lee, Jr",003000000000001AAA\nBob,"two\nlines",003000000000002AAA\n'


def test_a_result_file_with_its_own_id_column_keeps_it() -> None:
    plan = check_header(["Id", "LastName", "sf__Id", "sf__Created", "sf__Error"], operation="update")
    assert plan.send == ("Id", "LastName") and "sf__Id" in plan.note and "sent as Id" not in plan.note


def test_delete_from_a_result_file_sends_only_the_id() -> None:
    plan = check_header(["Email", "sf__Id", "sf__Created", "sf__Error"], operation="hardDelete")
    assert plan.send == ("Id",) and plan.keep == (1,)
    assert (
        plan.project(b"a@x,003000000000001AAA,true,\nb@x,,false,REQUIRED\n") == b'003000000000001AAA\n""\n'
    )  # an empty id stays a row (Salesforce reports it), never a blank line


def test_insert_and_upsert_from_a_result_file_drop_the_sf_columns() -> None:
    header = ["LastName", "Email", "sf__Id", "sf__Created", "sf__Error"]
    assert check_header(header, operation="insert").send == ("LastName", "Email")
    assert check_header(header, operation="upsert", external_id="Email").send == ("LastName", "Email")
    assert check_header(header, operation="upsert", external_id="Id").send == ("LastName", "Email", "Id")


def test_an_error_file_without_ids_for_update_is_refused() -> None:
    # an insert's error file has an sf__Id column (empty): it still counts as the id column
    assert check_header(["LastName", "sf__Id", "sf__Created", "sf__Error"], operation="update").send == (
        "LastName",
        "Id",
    )
    with pytest.raises(BulkInputError, match="needs an Id column"):
        check_header(["LastName", "sf__Created", "sf__Error"], operation="update")


def test_check_file_reads_the_header_like_the_splitter_and_rewinds() -> None:
    data = b"\xef\xbb\xbfLastName,sf__Id,sf__Created,sf__Error\rLee,003000000000001AAA,true,\r"
    fh = io.BytesIO(data)
    plan = check_file(fh, "in.csv", operation="update")
    assert fh.tell() == 0 and plan.send == ("LastName", "Id")
    batches = list(CsvSplitter(fh, columns=plan))
    assert batches[0].data == b"LastName,Id\nLee,003000000000001AAA\n"
    with pytest.raises(BulkInputError, match=r"in\.csv: columns 1 and 2"):
        check_file(io.BytesIO(b"Name,name\nx,y\n"), "in.csv", operation="insert")


def test_splitter_sent_records_match_the_batches() -> None:
    data = b'LastName,sf__Id,sf__Created,sf__Error\n"L, 1",0031,true,\n"L\n2",0032,true,\n'
    plan = check_file(io.BytesIO(data), "in.csv", operation="update")
    splitter = CsvSplitter(io.BytesIO(data), columns=plan, max_records=1)
    for batch in splitter:
        assert splitter.header + splitter.sent_records(data[batch.start : batch.end]) == batch.data


def test_the_input_is_never_an_output(tmp_path) -> None:
    src = tmp_path / "c.csv"
    src.write_text("Id\n")
    with pytest.raises(BulkInputError, match="is the input file"):
        check_outputs(str(src), str(tmp_path / "c.success.csv"), str(src))
    check_outputs(str(src), str(tmp_path / "c.success.csv"), str(tmp_path / "c.error.csv"))
