"""Bundle loading: the shipped connector, a new operation from data only, precise ConfigErrors."""

from __future__ import annotations

import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sfbulk.connector.bundle.definitions import OperationDef
from sfbulk.connector.connection import Connector, bundle_root
from sfbulk.errors import ConfigError, ConfigErrors, ParameterError
from sfbulk.registry import MemoryRegistry

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "connector_fixture"


def test_bundled_connector_loads_with_the_issue_operations():
    connector = Connector.load()
    assert connector.name == "salesforcebulk"
    assert connector.version
    assert {"init", "createJob", "updateJob", "getJob"} <= set(connector.operations)
    assert connector.init is not None and connector.init.kind == "init"
    assert connector.init.parameter_names[:8] == (
        "apiUrl",
        "apiVersion",
        "accessToken",
        "refreshToken",
        "clientId",
        "clientSecret",
        "intervalTime",
        "registryPath",
    )
    assert {"tokenEndpointHostname", "timeout", "caFile"} <= set(connector.init.parameter_names)
    assert set(connector.operation("createJob").parameter_names) >= {
        "operation",
        "object",
        "contentType",
        "externalIdFieldName",
        "concurrencyMode",
        "assignmentRuleId",
    }
    assert connector.operation("updateJob").parameter_names == ("jobId", "state")
    assert connector.operation("getJob").parameter_names == ("jobId",)
    assert isinstance(connector.operation("getJob"), OperationDef)
    assert (bundle_root() / "connector.yaml").is_file()


def test_unknown_operation_names_the_known_ones():
    with pytest.raises(ParameterError, match="no operation 'getJobs'.*getJob"):
        Connector.load().operation("getJobs")


class _Recorder(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.requests.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        payload = b"<note><id>N-1</id><title>T&amp;1</title></note>"
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _handle

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def recorder():
    _Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.requests
    server.shutdown()
    server.server_close()


def test_a_new_operation_needs_only_yaml_and_a_template(recorder):
    url, seen = recorder
    connector = Connector.load(FIXTURE)
    assert connector.name == "fixturebulk"
    with connector.connection(
        apiUrl=url, apiVersion="40", accessToken="fixture-session-123", registry=MemoryRegistry()
    ) as conn:
        resp = conn.invoke("createNote", folder="in box/../x", title="<b>hi</b>", trace="t-1", tag="zzz")
        assert resp.status == 201
        assert resp.properties == {"noteId": "N-1"}
        got = conn.invoke("getNote", folder="f", noteId=resp.properties["noteId"])
        assert got.properties == {"noteId": "N-1", "title": "T&1"}
    post, get = seen
    assert post["method"] == "POST"
    # path segments are percent-encoded; defaults and pass-through (strict: false) values go in the query
    assert post["path"] == "/services/async/40.0/notes/in%20box%2F..%2Fx?priority=normal&tag=zzz"
    assert post["headers"]["X-Trace"] == "t-1"
    assert post["headers"]["Content-Type"] == "application/xml; charset=UTF-8"
    assert post["headers"]["X-SFDC-Session"] == "fixture-session-123"
    assert post["body"] == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<note>\n<title>&lt;b&gt;hi&lt;/b&gt;</title>\n</note>'
    )
    assert get["path"] == "/services/async/40.0/notes/f/N-1"
    assert "X-Trace" not in get["headers"]


def test_strict_enum_in_a_new_operation():
    connector = Connector.load(FIXTURE)
    op = connector.operation("createNote")
    with pytest.raises(ParameterError, match="low, normal, high"):
        op.bind({"folder": "f", "title": "t", "priority": "urgent"})


# --- broken bundles: every error names file, line and field -----------------------------------


@pytest.fixture()
def bundle(tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(FIXTURE, target)
    return target


def load_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Connector.load(path)
    return info.value


def replace(file: Path, old: str, new: str) -> None:
    text = file.read_text()
    assert old in text
    file.write_text(text.replace(old, new))


def test_bad_method_names_file_line_and_field(bundle):
    replace(bundle / "operations/getNote.yaml", "method: GET", "method: FETCH")
    error = load_error(bundle)
    assert error.file.endswith("operations/getNote.yaml")
    assert error.line == 6
    assert error.field == "request.method"
    assert "FETCH" in str(error) and "getNote.yaml:6" in str(error)


def test_unknown_key_in_a_parameter(bundle):
    replace(bundle / "operations/createNote.yaml", "  - name: body\n", "  - name: body\n    requird: true\n")
    error = load_error(bundle)
    assert error.field == "parameters[2]" and error.line == 8
    assert "requird" in error.message


def test_undeclared_template_variable_names_the_template_line(bundle):
    replace(
        bundle / "templates/createNote.xml.j2", "<title>{{ title }}</title>", "<title>{{ titel }}</title>"
    )
    error = load_error(bundle)
    assert error.file.endswith("templates/createNote.xml.j2") and error.line == 3
    assert "'titel'" in error.message


def test_undeclared_variable_in_the_path(bundle):
    replace(bundle / "operations/getNote.yaml", "/{{ noteId }}", "/{{ note_id }}")
    error = load_error(bundle)
    assert error.field == "request.path" and "'note_id'" in error.message and error.line == 7


def test_template_syntax_error(bundle):
    replace(bundle / "templates/createNote.xml.j2", "{% endif %}", "{% endfor %}")
    error = load_error(bundle)
    assert error.file.endswith("createNote.xml.j2") and error.line == 6


def test_missing_template_and_missing_operation_file(bundle):
    (bundle / "templates/createNote.xml.j2").unlink()
    (bundle / "operations/getNote.yaml").unlink()
    error = load_error(bundle)
    assert isinstance(error, ConfigErrors) and len(error.errors) == 2
    text = str(error)
    assert "createNote.xml.j2 not found" in text
    assert "connector.yaml:8" in text and "getNote.yaml not found" in text


def test_name_mismatch_and_duplicate_key(bundle):
    replace(bundle / "operations/getNote.yaml", "name: getNote", "name: fetchNote")
    error = load_error(bundle)
    assert "listed as 'getNote'" in str(error) and error.line == 1
    replace(bundle / "operations/getNote.yaml", "name: fetchNote", "name: getNote\nname: again")
    error = load_error(bundle)
    assert "duplicate key 'name'" in str(error) and error.line == 2


def test_yaml_syntax_error_has_a_line(bundle):
    (bundle / "operations/getNote.yaml").write_text("name: getNote\nparameters: [\n  - broken: {\n")
    error = load_error(bundle)
    assert error.file.endswith("getNote.yaml") and error.line is not None and "invalid YAML" in str(error)


def test_connector_manifest_errors(bundle):
    replace(bundle / "connector.yaml", "version: 0.0.1\n", "")
    error = load_error(bundle)
    assert error.file.endswith("connector.yaml") and "'version' is a required property" in str(error)


def test_operation_file_outside_the_bundle_is_refused(bundle):
    replace(bundle / "connector.yaml", "operations/getNote.yaml", "../getNote.yaml")
    assert "inside the bundle" in str(load_error(bundle))


def test_connector_sets_its_own_session_and_content_type_headers(bundle):
    replace(bundle / "operations/getNote.yaml", "request:\n", "request:\n  headers:\n    X-SFDC-Session: x\n")
    assert "set by the connector itself" in str(load_error(bundle))


def test_init_operation_cannot_have_a_request(bundle):
    replace(bundle / "operations/init.yaml", "kind: init\n", "kind: init\nrequest: {method: GET, path: /x}\n")
    assert "init operation has no 'request'" in str(load_error(bundle))


def test_caller_body_operation(bundle, recorder):
    url, seen = recorder
    (bundle / "operations/upload.yaml").write_text(
        "name: upload\nparameters:\n  - {name: folder, required: true}\n"
        "  - {name: mime, default: text/csv}\nrequest:\n  method: POST\n  path: /up/{{ folder }}\n"
        '  contentType: "{{ mime }}"\n  body: {from: caller, required: true}\n'
    )
    replace(bundle / "connector.yaml", "  getNote:", "  upload: operations/upload.yaml\n  getNote:")
    connector = Connector.load(bundle)
    with connector.connection(apiUrl=url, registry=MemoryRegistry()) as conn:
        with pytest.raises(ParameterError, match="body is required"):
            conn.invoke("upload", folder="f")
        with pytest.raises(ParameterError, match="builds its own request body"):
            conn.invoke("getNote", folder="f", noteId="1", body=b"x")
        resp = conn.invoke("upload", folder="f", body=iter([b"a,b\n", b"1,2\n"]))
        assert resp.status == 201
    assert seen[-1]["headers"]["Content-Type"] == "text/csv"
    assert "X-SFDC-Session" not in seen[-1]["headers"]  # no token given: no header


def test_caller_content_type_is_relayed_unless_the_call_sets_one(bundle, recorder):
    url, seen = recorder
    (bundle / "operations/upload.yaml").write_text(
        "name: upload\nparameters:\n  - {name: folder, required: true}\n"
        "  - {name: mime, default: zip/csv}\nrequest:\n  method: POST\n  path: /up/{{ folder }}\n"
        '  contentType: "{{ mime }}"\n  body: {from: caller, callerContentType: mime}\n'
    )
    replace(bundle / "connector.yaml", "  getNote:", "  upload: operations/upload.yaml\n  getNote:")
    connector = Connector.load(bundle)
    with connector.connection(apiUrl=url, registry=MemoryRegistry()) as conn:
        conn.invoke("upload", folder="f", body=b"x", body_content_type="zip/xml")
        conn.invoke("upload", folder="f", body=b"x", body_content_type="zip/xml", mime="zip/json")
        conn.invoke("upload", folder="f", body=b"x")
        conn.invoke("upload", folder="f", body=b"x", body_content_type="")
    assert [r["headers"]["Content-Type"] for r in seen[-4:]] == ["zip/xml", "zip/json", "zip/csv", "zip/csv"]


def test_caller_content_type_must_name_a_declared_parameter(bundle):
    (bundle / "operations/upload.yaml").write_text(
        "name: upload\nrequest:\n  method: POST\n  path: /up\n  body:\n    from: caller\n"
        "    callerContentType: mime\n"
    )
    replace(bundle / "connector.yaml", "  getNote:", "  upload: operations/upload.yaml\n  getNote:")
    error = load_error(bundle)
    assert error.field == "request.body.callerContentType" and error.line == 7 and "'mime'" in error.message


def test_init_yaml_and_the_auth_code_agree():
    from sfbulk.connector import auth

    init = Connector.load().init
    assert init.parameter_names == auth.INIT_PARAMETERS
    defaults = {p.name: p.default for p in init.parameters if p.default is not None}
    assert defaults == {
        "apiVersion": auth.DEFAULT_API_VERSION,
        "intervalTime": str(auth.DEFAULT_INTERVAL_MS),
        "registryPath": auth.DEFAULT_REGISTRY_PATH,
        "tokenEndpointHostname": auth.DEFAULT_TOKEN_ENDPOINT,
        "timeout": f"{auth.DEFAULT_TIMEOUT:g}",
    }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"apiUrl": "ftp://x"}, "http(s) URL"),
        ({"apiUrl": "https://u:p@host"}, "plain base URL"),
        ({"apiUrl": "https://h", "apiVersion": "latest"}, "apiVersion"),
        ({"apiUrl": "https://h", "intervalTime": "soon"}, "intervalTime"),
        ({"apiUrl": "https://h", "timeout": "0"}, "timeout"),
        ({"apiUrl": "https://h", "registryPath": "../x", "refreshToken": "r", "clientId": "c"}, None),
        ({}, "apiUrl"),
        ({"apiUrl": "https://h", "apiurl": "x"}, "unknown parameter"),
    ],
)
def test_init_parameter_errors(params, message):
    from sfbulk.errors import RegistryError

    connector = Connector.load()
    if message is None:  # a registryPath outside the registry fails at init, with RegistryError
        with pytest.raises(RegistryError, match="outside"):
            connector.connection(registry=MemoryRegistry(), **params)
        return
    with pytest.raises(ParameterError, match=re.escape(message)):
        connector.connection(registry=MemoryRegistry(), **params)


def test_api_version_is_normalised():
    conn = Connector.load().connection(
        apiUrl="https://h.example/", apiVersion="34", registry=MemoryRegistry()
    )
    assert conn.api_url == "https://h.example/services/async/34.0"
    conn.close()


def test_the_bundle_package_shape():
    """definitions hold the frozen dataclasses, loader builds them; every exported name is defined where it is exported."""
    import dataclasses
    import inspect

    from sfbulk import yamlfile
    from sfbulk.connector import connection
    from sfbulk.connector.bundle import cache, definitions, loader, schema, templates

    assert connection.load_bundle is loader.load_bundle
    for module in (cache, definitions, loader, schema, templates, yamlfile):
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type) or inspect.isfunction(value):
                assert value.__module__ == module.__name__, (module.__name__, name)
    for name in definitions.__all__:
        value = getattr(definitions, name)
        if isinstance(value, type):
            assert dataclasses.is_dataclass(value) and value.__dataclass_params__.frozen, name
