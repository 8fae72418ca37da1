"""The generic bundle features Bulk API 2.0 needed, as pure functions and load-time checks.

csvToJson, the file root, integer parameters, init aliases, and the cross-checks of the new
connector.yaml / operation keys (a bundle that names an undeclared parameter does not load).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfbulk.connector.connection import BUNDLED, Connector, bundled_connectors
from sfbulk.connector.files import FileNotAllowedError, FileRoot
from sfbulk.connector.outputs import csv_to_json
from sfbulk.errors import ConfigError, ConfigErrors, ParameterError


def test_csv_to_json_rows_quotes_and_delimiters() -> None:
    csv = b'"sf__Id","sf__Error","Name"\n"001","DUPLICATE: a, b","Line\nbreak"\n'
    assert json.loads(csv_to_json(csv)) == [
        {"sf__Id": "001", "sf__Error": "DUPLICATE: a, b", "Name": "Line\nbreak"}
    ]
    assert json.loads(csv_to_json(b"a\tb\n1\t2\n", "\t")) == [{"a": "1", "b": "2"}]
    assert csv_to_json(b"") == b"[]"
    assert json.loads(csv_to_json(b"Id,Name\n")) == []
    assert json.loads(csv_to_json(b"\xef\xbb\xbfId,Name\r\n1\r\n")) == [{"Id": "1", "Name": ""}]


@given(
    st.lists(
        st.lists(
            st.text(
                alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"),
                max_size=8,
            ),
            min_size=2,
            max_size=2,
        ),
        max_size=5,
    )
)
def test_csv_to_json_round_trips_what_csv_writes(rows: list[list[str]]) -> None:
    import csv
    import io

    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["A", "B"])
    writer.writerows(rows)
    assert json.loads(csv_to_json(out.getvalue().encode("utf-8"))) == [{"A": a, "B": b} for a, b in rows]


def test_file_root_confines_relative_absolute_and_symlinked_paths(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "escape").symlink_to(tmp_path)
    files = FileRoot(root)
    assert files.resolve("sub/a.csv", "p") == root.resolve() / "sub" / "a.csv"
    assert files.resolve(str(root / "a.csv"), "p") == root.resolve() / "a.csv"
    for bad in ("../a.csv", "/etc/passwd", "escape/a.csv", "sub/../../a.csv", str(tmp_path / "a.csv")):
        with pytest.raises(FileNotAllowedError, match="outside the file root") as caught:
            files.resolve(bad, "op.filePath")
        assert caught.value.code == 700404 and "op.filePath" in str(caught.value)
    with pytest.raises(FileNotAllowedError, match="the file root directory itself"):
        files.resolve(".", "p")
    with pytest.raises(FileNotAllowedError, match="turned off"):
        FileRoot(None).resolve("a.csv", "p")


def test_file_root_write_is_atomic_and_private(tmp_path: Path) -> None:
    files = FileRoot(tmp_path)

    def chunks() -> object:
        yield b"one,"
        raise OSError(5, "Input/output error")

    with pytest.raises(ParameterError, match="cannot write"):
        files.write("out/r.csv", "p", chunks())  # type: ignore[arg-type]
    assert not (tmp_path / "out" / "r.csv").exists() and not list(tmp_path.rglob("*.part"))
    assert files.write("out/r.csv", "p", [b"a,b\n", b"1,2\n"]) == 8
    assert (tmp_path / "out" / "r.csv").read_bytes() == b"a,b\n1,2\n"
    assert (os.stat(tmp_path / "out" / "r.csv").st_mode & 0o777) == 0o600
    assert b"".join(files.reader("out/r.csv", "p")) == b"a,b\n1,2\n"
    with pytest.raises(ParameterError, match="not found"):
        files.reader("nope.csv", "p")


def test_integer_parameters() -> None:
    op = Connector.load("salesforcebulkv2").operation("getQueryJobResults")
    assert op.bind({"queryJobId": "750", "maxRecords": 5})["maxRecords"] == "5"
    assert op.bind({"queryJobId": "750"})["maxRecords"] == ""  # optional: empty is fine
    for bad in ("ten", "-1", "1.5", "0", "٣"):
        with pytest.raises(ParameterError, match="maxRecords"):
            op.bind({"queryJobId": "750", "maxRecords": bad})


def test_bundled_connectors_and_aliases() -> None:
    found = bundled_connectors()
    assert set(found) == {*BUNDLED, "salesforce_bulkapi_v2"}
    assert found["salesforce_bulkapi_v2"] is found["salesforcebulkv2"]
    v2 = found["salesforcebulkv2"]
    assert v2.definition.base("62.0") == "/services/data/v62.0/jobs" and v2.definition.session == "bearer"
    assert found["salesforcebulk"].definition.base("62.0") == "/services/async/62.0"
    wso2 = [
        "createJob",
        "uploadJobData",
        "closeJob",
        "abortJob",
        "deleteJob",
        "getJobInfo",
        "getAllJobInfo",
        "getSuccessfulResults",
        "getFailedResults",
        "getUnprocessedResults",
        "createQueryJob",
        "getQueryJobInfo",
        "getAllQueryJobInfo",
        "getQueryJobResults",
        "abortQueryJob",
        "deleteQueryJob",
    ]
    assert [name for name in v2.operations if name in wso2] == wso2
    assert set(v2.operations) - set(wso2) == {"init", "getQueryJobResultPages"}  # + the sfbulk extension


def test_init_aliases_map_to_the_token_life_cycle_names() -> None:
    v2 = Connector.load("salesforcebulkv2")
    mapped = v2._init_aliases(
        {
            "instanceUrl": "https://x.my.salesforce.com",
            "name": "cfg",
            "tokenUrl": "https://login.salesforce.com/services/oauth2/token/",
        }
    )
    assert mapped == {
        "apiUrl": "https://x.my.salesforce.com",
        "tokenEndpointHostname": "https://login.salesforce.com",
    }
    with pytest.raises(ParameterError, match="apiUrl"):
        v2.connection(name="only-a-name")


def _bundle(tmp_path: Path, manifest: str, operation: str) -> Path:
    (tmp_path / "operations").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "connector.yaml").write_text(manifest + "operations:\n  op: operations/op.yaml\n")
    (tmp_path / "operations" / "op.yaml").write_text(operation)
    return tmp_path


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        (
            "name: op\nparameters: [{name: a}]\nrequest: {method: PUT, path: /x, body: {from: input, inline: b}}\n",
            "names 'b', which is not a declared parameter",
        ),
        ("name: op\nrequest: {method: PUT, path: /x, body: {from: input}}\n", "needs 'inline' or 'file'"),
        ("name: op\nrequest: {method: GET, path: /x}\nresponse: {output: {file: f}}\n", "names 'f'"),
        (
            "name: op\nrequest: {method: GET, path: /x}\nresponse: {output: {convert: xml}}\n",
            "'xml' is not one of",
        ),
        (
            "name: op\nparameters: [{name: a, aliasOf: b}]\nrequest: {method: GET, path: /x}\n",
            "aliasOf is only for init parameters",
        ),
        (
            "name: op\nparameters: [{name: a, type: number}]\nrequest: {method: GET, path: /x}\n",
            "'number' is not one of",
        ),
    ],
)
def test_new_operation_keys_are_checked_at_load(tmp_path: Path, operation: str, message: str) -> None:
    root = _bundle(tmp_path, "name: t\nversion: 1\n", operation)
    with pytest.raises((ConfigError, ConfigErrors), match=message) as caught:
        Connector.load(root)
    assert "operations/op.yaml" in str(caught.value)


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("name: t\nversion: 1\nbasePath: /a/{{ other }}\n", "basePath may only use"),
        ("name: t\nversion: 1\nsession: basic\n", "'basic' is not one of"),
        ("name: t\nversion: 1\naliases: [not-an-identifier]\n", "does not match"),
    ],
)
def test_new_manifest_keys_are_checked_at_load(tmp_path: Path, manifest: str, message: str) -> None:
    root = _bundle(tmp_path, manifest, "name: op\nrequest: {method: GET, path: /x}\n")
    with pytest.raises(ConfigError, match=message) as caught:
        Connector.load(root)
    assert "connector.yaml" in str(caught.value)


def test_v2_init_shares_the_1_0_init_parameters() -> None:
    """The v2 bundle's init.yaml is a copy plus WSO2 names: the shared parameters must not drift apart."""
    v1 = {p.name: p for p in Connector.load().operation("init").parameters}
    v2 = {p.name: p for p in Connector.load("salesforcebulkv2").operation("init").parameters}
    assert set(v2) - set(v1) == {"instanceUrl", "tokenUrl", "name"}
    for name, param in v1.items():
        assert v2[name].default == param.default, name
    assert v2["apiUrl"].required is False  # instanceUrl may stand for it; InitParams still demands one
