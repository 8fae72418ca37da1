"""Token life cycle against the emulator: 2017 registry semantics, intervalTime, refresh-and-replay."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from sfbulk.connector.connection import Connector
from sfbulk.errors import AuthError, ConnectError
from sfbulk.registry import FileRegistry
from sfbulk.transport import HttpRequest, HttpResponse, RequestsTransport, Transport

REG_PATH = "connectors/SalesforceBulk"


class CountingTransport(Transport):
    """A real RequestsTransport that also records which paths were called (no mocking)."""

    def __init__(self, **kwargs) -> None:
        self.inner = RequestsTransport(**kwargs)
        self.paths: list[str] = []

    def send(self, request: HttpRequest) -> HttpResponse:
        self.paths.append(request.method + " " + request.url.split("/", 3)[3])
        return self.inner.send(request)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="module")
def connector():
    return Connector.load()


@pytest.fixture()
def registry(tmp_path):
    return FileRegistry(tmp_path / "registry")


def init_params(emu, **overrides):
    creds = emu.credentials
    params = dict(
        apiUrl=emu.base_url,
        apiVersion="62.0",
        accessToken="",
        refreshToken=creds["refresh_token"],
        clientId=creds["client_id"],
        clientSecret=creds["client_secret"],
        registryPath=REG_PATH,
        tokenEndpointHostname=emu.base_url,
        timeout="10",
    )
    params.update(overrides)
    return params


def now_ms() -> int:
    return int(time.time() * 1000)


def create_job(conn):
    resp = conn.invoke("createJob", operation="insert", object="Contact", contentType="CSV")
    assert resp.status == 201, resp.text
    return resp.properties["jobId"]


def test_empty_registry_is_seeded_with_the_supplied_token(emulator, connector, registry, access_token):
    before = now_ms()
    with connector.connection(registry=registry, **init_params(emulator, accessToken=access_token)) as conn:
        create_job(conn)
        assert conn.auth.refresh_count == 0
    assert registry.get(f"{REG_PATH}/accessToken") == access_token
    assert before <= int(registry.get(f"{REG_PATH}/time")) <= now_ms()
    token_file = registry.root / REG_PATH / "accessToken"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600


def test_stored_token_wins_over_the_supplied_one(emulator, connector, registry, access_token):
    with connector.connection(
        registry=registry, **init_params(emulator, accessToken="bogus-token-xyz")
    ) as conn:
        conn.auth.store(
            access_token
        )  # stored for this very identity (tests/integration/test_token_identity.py: others)
        create_job(conn)
        # the bogus one was never sent: it would have been rejected and refreshed
        assert conn.auth.refresh_count == 0
    assert registry.get(f"{REG_PATH}/accessToken") == access_token


def test_token_older_than_interval_time_is_refreshed_first(emulator, connector, registry, access_token):
    transport = CountingTransport()
    with connector.connection(
        registry=registry,
        transport=transport,
        **init_params(emulator, accessToken=access_token, intervalTime="4000"),
    ) as conn:
        conn.auth.store(access_token, stamp_ms=now_ms() - 5000)
        create_job(conn)
        assert conn.auth.refresh_count == 1
    assert transport.paths[0] == "POST services/oauth2/token"  # refreshed ahead of time, not after a 400
    assert len(transport.paths) == 2
    assert registry.get(f"{REG_PATH}/accessToken") not in (None, "", access_token)
    assert now_ms() - int(registry.get(f"{REG_PATH}/time")) < 5000
    transport.close()


def test_fresh_token_is_not_refreshed(emulator, connector, registry, access_token):
    with connector.connection(
        registry=registry, **init_params(emulator, accessToken=access_token, intervalTime="60000")
    ) as conn:
        conn.auth.store(access_token, stamp_ms=now_ms() - 5000)
        create_job(conn)
        assert conn.auth.refresh_count == 0


def test_invalid_session_is_refreshed_and_replayed_once(emulator, connector, registry, access_token):
    transport = CountingTransport()
    with connector.connection(
        registry=registry, transport=transport, **init_params(emulator, accessToken=access_token)
    ) as conn:
        job_id = create_job(conn)
        emulator.expire_tokens()
        transport.paths.clear()
        closed = conn.invoke("updateJob", jobId=job_id, state="Closed")
        assert closed.status == 200, closed.text
        assert closed.properties["state"] == "Closed"
        assert conn.auth.refresh_count == 1
        assert transport.paths == [
            f"POST services/async/62.0/job/{job_id}",
            "POST services/oauth2/token",
            f"POST services/async/62.0/job/{job_id}",
        ]
        assert conn.invoke("getJob", jobId=job_id).properties["state"] == "Closed"
    transport.close()


def test_other_client_errors_are_not_replayed(emulator, connector, registry, access_token):
    transport = CountingTransport()
    with connector.connection(
        registry=registry, transport=transport, **init_params(emulator, accessToken=access_token)
    ) as conn:
        resp = conn.invoke("getJob", jobId="INVALID")
        assert resp.status == 400 and b"InvalidJob" in resp.content
        bad_object = conn.invoke("createJob", operation="insert", object="NoSuchThing")
        assert bad_object.status == 400 and b"InvalidSessionId" not in bad_object.content
        assert conn.auth.refresh_count == 0
        assert len(transport.paths) == 2
    transport.close()


def test_without_refresh_credentials_the_400_comes_back(emulator, connector, registry, access_token):
    params = init_params(emulator, accessToken=access_token, refreshToken="", clientId="", clientSecret="")
    with connector.connection(registry=registry, **params) as conn:
        create_job(conn)
        emulator.expire_tokens()
        resp = conn.invoke("getJob", jobId="750000000000000AAA")
        assert resp.status == 400 and b"InvalidSessionId" in resp.content
        assert conn.auth.refresh_count == 0
    assert not (registry.root / REG_PATH).exists()  # nothing stored without refresh credentials


def test_instance_url_from_the_token_answer_becomes_the_api_url(emulator, connector, registry):
    # apiUrl points nowhere; the empty registry forces a refresh whose instance_url is the emulator
    params = init_params(emulator, apiUrl="http://127.0.0.1:9", apiVersion="34")
    with connector.connection(registry=registry, **params) as conn:
        create_job(conn)
        assert conn.api_url == emulator.base_url + "/services/async/34.0"
        assert conn.auth.refresh_count == 1
    assert registry.get(f"{REG_PATH}/instanceUrl") == emulator.base_url


def test_bad_refresh_token_is_an_auth_error_without_secrets(emulator, connector, registry):
    params = init_params(emulator, refreshToken="wrong-refresh-token-123", clientSecret="wrong-secret-456")
    with connector.connection(registry=registry, **params) as conn, pytest.raises(AuthError) as info:
        conn.invoke("getJob", jobId="750000000000000AAA")
    message = str(info.value)
    assert "HTTP 400" in message and "invalid_" in message
    assert "wrong-refresh-token-123" not in message and "wrong-secret-456" not in message


def test_unknown_client_id_is_reported(emulator, connector, registry):
    with connector.connection(registry=registry, **init_params(emulator, clientId="nobody")) as conn:
        with pytest.raises(AuthError, match="invalid_client_id"):
            conn.invoke("getJob", jobId="750000000000000AAA")


def test_streamed_file_body_is_rewound_for_the_replay(emulator, connector, registry, access_token, tmp_path):
    # a bundle with one extra operation relaying the caller's body (as batch uploads do)
    bundle = tmp_path / "bundle"
    root = Path(connector.definition.root)
    shutil.copytree(root / "operations", bundle / "operations")
    shutil.copytree(root / "templates", bundle / "templates")
    (bundle / "connector.yaml").write_text(
        "name: salesforcebulk\nversion: '1'\noperations:\n  init: operations/init.yaml\n"
        "  createJob: operations/createJob.yaml\n  csvBatch: operations/csvBatch.yaml\n"
    )
    (bundle / "operations/csvBatch.yaml").write_text(
        "name: csvBatch\nparameters:\n  - {name: jobId, required: true}\nrequest:\n  method: POST\n"
        "  path: /job/{{ jobId }}/batch\n  contentType: text/csv\n  body: {from: caller, required: true}\n"
        "response:\n  extract: {batchId: id}\n"
    )
    data = tmp_path / "rows.csv"
    data.write_bytes(b"LastName,Email\n" + b"".join(b"Doe%d,d%d@example.com\n" % (i, i) for i in range(500)))
    custom = Connector.load(bundle)
    with custom.connection(registry=registry, **init_params(emulator, accessToken=access_token)) as conn:
        job_id = create_job(conn)
        emulator.expire_tokens()
        with open(data, "rb") as handle:
            resp = conn.invoke("csvBatch", jobId=job_id, body=handle)
        assert resp.status == 201, resp.text
        assert resp.properties["batchId"].startswith("751")
        assert conn.auth.refresh_count == 1
        # a one-shot iterator cannot be replayed: the token is refreshed, the 400 comes back
        emulator.expire_tokens()
        resp = conn.invoke("csvBatch", jobId=job_id, body=iter([data.read_bytes()]))
        assert resp.status == 400 and b"InvalidSessionId" in resp.content
        assert conn.auth.refresh_count == 2
        # ... and the next call simply works with the refreshed token
        assert conn.invoke("csvBatch", jobId=job_id, body=lambda: open(data, "rb")).status == 201


@pytest.mark.slow
def test_tls_with_the_emulator_ca(emulator_factory, connector, registry):
    emu = emulator_factory(tls=True)
    assert emu.base_url.startswith("https://127.0.0.1:")
    with connector.connection(registry=registry, caFile=emu.ca_file, **init_params(emu)) as conn:
        create_job(conn)
    # a shared transport (the engine's) honours the connection's caFile too
    with (
        RequestsTransport() as shared,
        connector.connection(
            registry=registry, caFile=emu.ca_file, transport=shared, **init_params(emu)
        ) as conn,
    ):
        create_job(conn)
    other = FileRegistry(registry.root.parent / "other")
    with (
        connector.connection(registry=other, **init_params(emu)) as conn,
        pytest.raises(ConnectError, match="TLS"),
    ):
        conn.invoke("getJob", jobId="750000000000000AAA")


def test_cached_connections_share_one_session(emulator, connector, registry, access_token):
    params = init_params(emulator, accessToken=access_token)
    first = connector.connection(registry=registry, cache=True, **params)
    again = connector.connection(registry=FileRegistry(registry.root), cache=True, **params)
    other = connector.connection(registry=registry, cache=True, **dict(params, clientSecret="different"))
    try:
        assert first is again
        assert other is not first
        create_job(first)
    finally:
        connector.close_cached()
    assert first.closed and other.closed


def test_no_secret_in_debug_logs_of_a_full_flow(emulator, connector, registry, access_token, caplog):
    caplog.set_level(logging.DEBUG)
    creds = emulator.credentials
    with connector.connection(registry=registry, **init_params(emulator, accessToken=access_token)) as conn:
        job_id = create_job(conn)
        emulator.expire_tokens()  # forces a refresh + replay inside the flow
        assert conn.invoke("getJob", jobId=job_id).status == 200
        assert conn.invoke("updateJob", jobId=job_id, state="Closed").status == 200
        assert conn.auth.refresh_count == 1
        new_token = registry.get(f"{REG_PATH}/accessToken")
        text = caplog.text + repr(conn.params) + repr(conn.auth.current())
    assert "POST /services/async/62.0/job -> 201" in caplog.text  # the flow was logged
    for secret in (access_token, new_token, creds["refresh_token"], creds["client_secret"]):
        assert secret and secret not in text


def test_a_token_written_by_another_process_is_used_by_the_next_call(
    emulator, connector, registry, access_token
):
    """The unlocked fast path skips re-reading unchanged token files; a write must still be seen at once."""
    transport = CountingTransport()
    with connector.connection(
        registry=registry, transport=transport, **init_params(emulator, accessToken="", intervalTime="600000")
    ) as conn:
        conn.auth.store("stale-token-from-earlier")
        first = conn.invoke("createJob", operation="insert", object="Contact", contentType="CSV")
        assert first.status == 201  # stale token rejected, refreshed and replayed
        assert conn.auth.refresh_count == 1
        calls_before = len(transport.paths)
        emulator.expire_tokens()  # the refreshed token is now rejected ...
        fresh = emulator.issue_token()  # ... and "another process" stores a valid one
        registry.put(f"{REG_PATH}/accessToken", fresh, secret=True)
        again = conn.invoke("createJob", operation="insert", object="Contact", contentType="CSV")
        assert again.status == 201
        # Exactly one request: the new stored token was sent straight away (a stale cache would have
        # sent the expired token first, got 400 InvalidSessionId and replayed).
        assert transport.paths[calls_before:] == ["POST services/async/62.0/job"]
        assert conn.auth.refresh_count == 1
    transport.close()


def test_registry_versions_change_on_every_write(registry):
    key = f"{REG_PATH}/accessToken"
    assert registry.version(key) == ("missing",)
    seen = set()
    for value in ("a" * 20, "b" * 20, "c" * 20):  # same size each time: the inode/ctime must differ
        registry.put(key, value, secret=True)
        seen.add(registry.version(key))
    assert len(seen) == 3


def test_a_registry_reused_for_another_api_url_refreshes_instead_of_calling_the_old_instance(
    emulator_factory, connector, registry
):
    first, second = emulator_factory(), emulator_factory()  # e.g. an emulator restarted on another port
    with connector.connection(registry=registry, **init_params(first)) as conn:
        create_job(conn)
    assert registry.get(f"{REG_PATH}/instanceUrl") == first.base_url
    first.stop()  # the old instance is gone: a request sent there would be a ConnectError
    with connector.connection(registry=registry, **init_params(second)) as conn:
        create_job(conn)
        assert conn.auth.refresh_count == 1
        # another instance is another identity: its own entry, the first one's left as it was
        own = f"{REG_PATH}/identities/{conn.auth.identity()[:40]}"
    assert registry.get(f"{own}/instanceUrl") == registry.get(f"{own}/apiUrl") == second.base_url
    assert registry.get(f"{REG_PATH}/instanceUrl") == first.base_url
