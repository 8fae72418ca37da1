"""Each grantType end to end against the emulator: through a Connection, through a flow's init and
``sfbulk run``; refusals as AuthErrors naming what to check; identities kept apart; refresh-token
rotation shared by processes over one registry."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sfbulk.cli import cli
from sfbulk.connector.connection import Connector
from sfbulk.errors import AuthError
from sfbulk.registry import FileRegistry

REG_PATH = "connectors/SalesforceBulk"


def jwt_params(emu, **overrides: str) -> dict[str, str]:
    values = {
        "apiUrl": emu.base_url,
        "grantType": "jwt_bearer",
        "clientId": emu.credentials["client_id"],
        "username": "demo@sfbulk.local",
        "privateKeyFile": emu.jwt_private_key_file,
        "tokenEndpointHostname": emu.base_url,
        "timeout": "10",
    }
    values.update(overrides)
    return values


def client_credentials_params(emu, **overrides: str) -> dict[str, str]:
    # no tokenEndpointHostname: client credentials go to the instance (the My Domain), the emulator here
    values = {
        "apiUrl": emu.base_url,
        "grantType": "client_credentials",
        "clientId": emu.credentials["client_id"],
        "clientSecret": emu.credentials["client_secret"],
        "timeout": "10",
    }
    values.update(overrides)
    return values


def password_params(emu, **overrides: str) -> dict[str, str]:
    creds = emu.credentials
    values = {
        "apiUrl": emu.base_url,
        "grantType": "password",
        "clientId": creds["client_id"],
        "clientSecret": creds["client_secret"],
        "username": creds["username"],
        "password": creds["password"],
        "tokenEndpointHostname": emu.base_url,
        "timeout": "10",
    }
    values.update(overrides)
    return values


def refresh_params(emu, **overrides: str) -> dict[str, str]:
    creds = emu.credentials
    values = {
        "apiUrl": emu.base_url,
        "refreshToken": creds["refresh_token"],
        "clientId": creds["client_id"],
        "clientSecret": creds["client_secret"],
        "tokenEndpointHostname": emu.base_url,
        "timeout": "10",
    }
    values.update(overrides)
    return values


def create_job(conn) -> int:
    return conn.invoke("createJob", operation="insert", object="Contact", contentType="CSV").status


FLOWS = {
    "jwt_bearer": (jwt_params, "jwt_bearer"),
    "client_credentials": (client_credentials_params, "client_credentials"),
    "password": (password_params, "password"),
}


@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_each_grant_gets_stores_and_reuses_a_token(emulator, tmp_path: Path, flow: str) -> None:
    make, counted = FLOWS[flow]
    registry = FileRegistry(tmp_path / "registry")
    before = emulator.oauth.grant_counts[counted]
    with Connector.load().connection(registry=registry, **make(emulator)) as conn:
        assert create_job(conn) == 201
        assert conn.auth.refresh_count == 1
    assert emulator.oauth.grant_counts[counted] == before + 1
    stored = registry.get(f"{REG_PATH}/accessToken")
    assert stored and emulator.sessions.valid(stored)
    # another connection with the same credentials uses the stored token: no second grant
    with Connector.load().connection(registry=registry, **make(emulator)) as again:
        assert create_job(again) == 201 and again.auth.refresh_count == 0
    # the token expires: the next call is refused, the grant runs again and the call is replayed
    emulator.expire_tokens()
    with Connector.load().connection(registry=registry, **make(emulator)) as later:
        assert create_job(later) == 201 and later.auth.refresh_count == 1
    assert emulator.oauth.grant_counts[counted] == before + 2


def test_the_bulk_2_connector_uses_the_same_grants(emulator, tmp_path: Path) -> None:
    conn = Connector.load("salesforcebulkv2").connection(
        registry=FileRegistry(tmp_path / "r"), **jwt_params(emulator, apiVersion="62.0")
    )
    with conn:
        assert conn.invoke("getAllJobInfo").status == 200
        assert conn.auth.refresh_count == 1


@pytest.mark.parametrize(
    ("overrides", "description", "advice"),
    [
        ({"username": "nobody@sfbulk.local"}, "user hasn't approved this consumer", "check username"),
        ({"audience": "https://test.salesforce.com"}, "audience is invalid", "check audience"),
        ({"clientId": "another-app"}, "client identifier invalid", "check clientId, username"),
    ],
)
def test_jwt_refusals_name_what_to_check_and_write_nothing(
    emulator, tmp_path: Path, overrides, description, advice
) -> None:
    registry = FileRegistry(tmp_path / "r")
    with Connector.load().connection(registry=registry, **jwt_params(emulator, **overrides)) as conn:
        with pytest.raises(AuthError) as caught:
            create_job(conn)
    text = str(caught.value)
    assert text.startswith("token request (grantType jwt_bearer) at 127.0.0.1:") and "HTTP 400" in text
    assert description in text and advice in text
    assert "PRIVATE KEY" not in text and "eyJ" not in text  # neither the key nor the assertion
    assert not registry.get(f"{REG_PATH}/accessToken")


def test_a_key_the_app_does_not_know_is_refused_and_never_gets_the_cached_token(
    emulator, tmp_path: Path
) -> None:
    registry = FileRegistry(tmp_path / "r")
    with Connector.load().connection(registry=registry, **jwt_params(emulator)) as owner:
        assert create_job(owner) == 201
    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    # same app, same user, same registry: only the key differs, so the identity differs
    with Connector.load().connection(
        registry=registry, **jwt_params(emulator, privateKeyFile=str(stranger))
    ) as other:
        assert other.auth.cached() is None
        with pytest.raises(AuthError, match="invalid assertion.*certificate uploaded to the connected app"):
            create_job(other)


def test_two_jwt_subjects_never_share_a_cached_token(emulator, tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path / "r")
    counts = dict(emulator.oauth.subject_counts)
    tokens = []
    for user in ("demo@sfbulk.local", "integration@sfbulk.local", "demo@sfbulk.local"):
        with Connector.load().connection(registry=registry, **jwt_params(emulator, username=user)) as conn:
            assert create_job(conn) == 201
            tokens.append((user, conn.auth.current().token.reveal(), conn.auth.refresh_count))
    (u1, t1, n1), (u2, t2, n2), (u3, t3, n3) = tokens
    assert t1 != t2 and (n1, n2) == (1, 1)  # each subject its own grant and token
    assert t3 == t1 and n3 == 0  # the first subject's token is still its own
    assert emulator.oauth.subject_counts["demo@sfbulk.local"] == counts.get("demo@sfbulk.local", 0) + 1
    assert (
        emulator.oauth.subject_counts["integration@sfbulk.local"]
        == counts.get("integration@sfbulk.local", 0) + 1
    )


def test_grants_never_share_entries_with_each_other(emulator, tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path / "r")
    seen = set()
    for make in (jwt_params, client_credentials_params, password_params, refresh_params):
        with Connector.load().connection(registry=registry, **make(emulator)) as conn:
            assert create_job(conn) == 201 and conn.auth.refresh_count == 1
            seen.add(conn.auth.current().token.reveal())
    assert len(seen) == 4


def test_client_credentials_refused_name_the_secret(emulator, tmp_path: Path) -> None:
    params = client_credentials_params(emulator, clientSecret="not-the-secret")
    with Connector.load().connection(registry=FileRegistry(tmp_path / "r"), **params) as conn:
        with pytest.raises(AuthError) as caught:
            create_job(conn)
    assert "invalid client credentials" in str(caught.value) and "check clientId, clientSecret" in str(
        caught.value
    )
    assert "not-the-secret" not in str(caught.value)


# -- refresh-token rotation ----------------------------------------------------------------------


def _rotation_worker(root: str, params: dict, barrier, results) -> None:
    try:
        conn = Connector.load().connection(registry=FileRegistry(root), **params)
        if barrier is not None:
            barrier.wait(10)
        statuses = [create_job(conn) for _ in range(2)]
        results.put((conn.auth.refresh_count, conn.auth.rotations, statuses, None))
        conn.close()
    except Exception as exc:  # report, never hang the parent
        results.put((None, None, [], f"{type(exc).__name__}: {exc}"))


def _run(ctx, root: str, params: dict, count: int) -> list[tuple]:
    barrier = ctx.Barrier(count) if count > 1 else None
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_rotation_worker, args=(root, params, barrier, results)) for _ in range(count)
    ]
    for proc in procs:
        proc.start()
    reports = [results.get(timeout=30) for _ in procs]
    for proc in procs:
        proc.join(10)
    assert [r[3] for r in reports if r[3]] == []
    return reports


def test_a_rotated_refresh_token_is_used_by_every_process_sharing_the_registry(
    emulator_factory, tmp_path: Path
) -> None:
    emu = emulator_factory(rotate_refresh_tokens=True)
    root = str(tmp_path / "registry")
    params = refresh_params(emu, accessToken="", registryPath=REG_PATH)
    ctx = multiprocessing.get_context("fork")
    # process A: the first grant spends the configured refresh token; Salesforce answers a new one
    (first,) = _run(ctx, root, params, 1)
    assert first[:3] == (1, 1, [201, 201])
    registry = FileRegistry(root)
    stored = registry.get(f"{REG_PATH}/refreshToken")
    assert stored and stored != emu.credentials["refresh_token"]
    assert emu.oauth.valid_refresh_tokens() == {stored}  # the configured one is void now
    assert (registry.path(f"{REG_PATH}/refreshToken").stat().st_mode & 0o077) == 0
    # four more processes, configured with the same (now void) refresh token, find the token expired
    emu.expire_tokens()
    reports = _run(ctx, root, params, 4)
    assert sum(r[0] for r in reports) == 1 and sum(r[1] for r in reports) == 1  # one grant, one rotation
    assert all(r[2] == [201, 201] for r in reports)
    final = registry.get(f"{REG_PATH}/refreshToken")
    assert final not in (stored, None) and emu.oauth.valid_refresh_tokens() == {final}
    assert emu.oauth.grant_counts["refresh_token"] == 2


# -- through a flow's init and `sfbulk run` --------------------------------------------------------

FLOW = """
proxies:
  createJob:
    inSequence:
      mediators:
        - salesforcebulk.init:
            apiUrl: "{apiUrl}"
            grantType: jwt_bearer
            clientId: "{clientId}"
            username: "{$ctx:user}"
            privateKeyFile: "{keyFile}"
            tokenEndpointHostname: "{apiUrl}"
        - salesforcebulk.createJob:
            operation: insert
            object: Contact
            contentType: CSV
        - respond
    description: the operator's key and app are in the flow; the caller names the user
"""


def test_a_flow_init_with_the_jwt_grant_through_sfbulk_run(emulator, tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        FLOW.replace("{apiUrl}", emulator.base_url)
        .replace("{clientId}", emulator.credentials["client_id"])
        .replace("{keyFile}", emulator.jwt_private_key_file)
        .replace("{$ctx:user}", "demo@sfbulk.local")
    )
    body = tmp_path / "in.xml"
    body.write_text("<createJob/>")
    args = [
        "run",
        str(flow),
        "--proxy",
        "createJob",
        "--input",
        str(body),
        "--registry",
        str(tmp_path / "reg"),
    ]
    args += ["--allow-host", "127.0.0.1:*"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("HTTP 201") and "<object>Contact</object>" in result.stdout
    assert "PRIVATE KEY" not in result.output
    # a second run reuses the stored token of this identity
    before = emulator.oauth.subject_counts["demo@sfbulk.local"]
    again = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert again.exit_code == 0 and emulator.oauth.subject_counts["demo@sfbulk.local"] == before


# -- through the seed proxy (examples/flows.yaml): the caller's own credentials in the request --------

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def seed_body(tmp_path: Path, emu, **fields: str) -> Path:
    values = {
        "apiUrl": emu.base_url,
        "tokenEndpointHostname": emu.base_url,
        "operation": "insert",
        "contentType": "CSV",
        "object": "Contact",
        "registryPath": REG_PATH,
    }
    values.update(fields)
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in values.items())
    path = tmp_path / "createJob.xml"
    path.write_text(f"<createJob>{inner}</createJob>")
    return path


def run_seed(tmp_path: Path, body: Path):
    args = ["run", str(EXAMPLES / "flows.yaml"), "--proxy", "createJob", "--input", str(body)]
    args += ["--registry", str(tmp_path / "registry"), "--allow-host", "127.0.0.1:*"]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_the_seed_proxy_takes_client_credentials_and_a_jwt_key_from_the_caller(
    emulator, tmp_path: Path
) -> None:
    creds = emulator.credentials
    cc = seed_body(
        tmp_path,
        emulator,
        grantType="client_credentials",
        clientId=creds["client_id"],
        clientSecret=creds["client_secret"],
    )
    result = run_seed(tmp_path, cc)
    assert result.exit_code == 0 and result.stdout.startswith("HTTP 201"), result.output
    pem = Path(emulator.jwt_private_key_file).read_text()
    jwt_body = seed_body(
        tmp_path,
        emulator,
        grantType="jwt_bearer",
        clientId=creds["client_id"],
        username="integration@sfbulk.local",
        privateKey=pem,
    )
    before = emulator.oauth.subject_counts["integration@sfbulk.local"]
    result = run_seed(tmp_path, jwt_body)
    assert result.exit_code == 0 and result.stdout.startswith("HTTP 201"), result.output
    assert emulator.oauth.subject_counts["integration@sfbulk.local"] == before + 1
    assert creds["client_secret"] not in result.output and pem.splitlines()[1] not in result.output


def test_the_seed_proxy_answers_a_refused_grant_with_a_fault_naming_the_parameter(
    emulator, tmp_path: Path
) -> None:
    creds = emulator.credentials
    body = seed_body(
        tmp_path,
        emulator,
        grantType="jwt_bearer",
        clientId=creds["client_id"],
        username="nobody@sfbulk.local",
        privateKey=Path(emulator.jwt_private_key_file).read_text(),
    )
    result = run_seed(tmp_path, body)
    assert result.exit_code != 0
    assert "HTTP 500" in result.stdout and "user hasn't approved this consumer" in result.stdout
    assert "check username" in result.stdout and "PRIVATE KEY" not in result.output


def test_a_revoked_rotated_refresh_token_says_where_it_was_kept(emulator_factory, tmp_path: Path) -> None:
    import requests

    emu = emulator_factory(rotate_refresh_tokens=True)
    registry = FileRegistry(tmp_path / "r")
    with Connector.load().connection(registry=registry, **refresh_params(emu)) as conn:
        assert create_job(conn) == 201 and conn.auth.rotations == 1
    rotated = registry.get(f"{REG_PATH}/refreshToken")
    assert rotated
    # an admin revokes it (Setup, or the revoke endpoint); the session expires
    requests.post(f"{emu.base_url}/services/oauth2/revoke", data={"token": rotated}, timeout=10)
    emu.expire_tokens()
    with Connector.load().connection(registry=registry, **refresh_params(emu)) as conn:
        with pytest.raises(AuthError) as caught:
            create_job(conn)
    text = str(caught.value)
    assert "expired access/refresh token" in text and f"{REG_PATH}/refreshToken" in text
    assert "configure its new refreshToken" in text and rotated not in text
