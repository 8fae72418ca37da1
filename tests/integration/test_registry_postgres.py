"""The PostgreSQL registry beyond the shared contract: the CLI options (--registry URL,
--registry-key-file) on run, load, extract and serve; errors a user can act on (no psycopg, no server,
a bad URL, a bad key file) without the password; a crashed lock holder; a dropped connection; several
hosts creating the table at once."""

from __future__ import annotations

import csv
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from sfbulk.cli import cli
from sfbulk.errors import RegistryError
from sfbulk.registry import PostgresRegistry, RegistryCipher, open_registry
from sfbulk.registry.crypto import SEALED_PREFIX, generate_key

if TYPE_CHECKING:
    import psycopg

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
TOKEN_KEY = "connectors/SalesforceBulk/accessToken"


def _pg_connect(*args: Any, **kwargs: Any) -> psycopg.Connection[Any]:
    """psycopg.connect, imported here: every xdist worker collects this module (0.12 s to import
    psycopg), and one of them runs it."""
    import psycopg

    return psycopg.connect(*args, **kwargs)


def _rows(url: str) -> dict[str, str]:
    registry = open_registry(url, environ={})
    assert isinstance(registry, PostgresRegistry)
    with _pg_connect(**registry._params) as conn:
        found = {str(k): str(v) for k, v in conn.execute(f"SELECT key, value FROM {registry.table}")}
    registry.close()
    return found


def _key_file(tmp_path: Path, *keys: str) -> Path:
    path = tmp_path / "registry.key"
    path.write_text("# sfbulk registry keys, the first is current\n" + "\n".join(keys) + "\n")
    path.chmod(0o600)
    return path


def _request(tmp_path: Path, emulator: Any) -> Path:
    text = (EXAMPLES / "createJob.xml").read_text().replace("http://127.0.0.1:8281", emulator.base_url)
    path = tmp_path / "createJob.xml"
    path.write_text(text)
    return path


# -- the CLI ----------------------------------------------------------------------------------------


def test_run_caches_the_token_in_postgresql_encrypted_with_the_key_file(
    tmp_path: Path, emulator: Any, pg_registry_url: str
) -> None:
    key = generate_key()
    args = [
        "run",
        str(EXAMPLES / "flows.yaml"),
        "--proxy",
        "createJob",
        "--input",
        str(_request(tmp_path, emulator)),
        "--registry",
        pg_registry_url,
        "--registry-key-file",
        str(_key_file(tmp_path, key)),
    ]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("HTTP 201 Created")
    rows = _rows(pg_registry_url)
    assert rows[TOKEN_KEY].startswith(SEALED_PREFIX)
    assert rows["connectors/SalesforceBulk/apiUrl"] == emulator.base_url  # not a secret: plain
    token = open_registry(pg_registry_url, cipher=RegistryCipher.from_text(key, source="t")).get(TOKEN_KEY)
    assert token and token not in "".join(rows.values())
    # a second run adopts the cached token: no new row, the same token
    again = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert (
        open_registry(pg_registry_url, cipher=RegistryCipher.from_text(key, source="t")).get(TOKEN_KEY)
        == token
    )


def test_run_with_the_key_in_the_environment_and_without_it(
    tmp_path: Path, emulator: Any, pg_registry_url: str
) -> None:
    args = [
        "run",
        str(EXAMPLES / "flows.yaml"),
        "--proxy",
        "createJob",
        "--input",
        str(_request(tmp_path, emulator)),
    ]
    args += ["--registry", pg_registry_url]
    result = CliRunner().invoke(
        cli, args, env={"SFBULK_REGISTRY_KEY": generate_key()}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert _rows(pg_registry_url)[TOKEN_KEY].startswith(SEALED_PREFIX)
    # the same registry without the key: a clear fault naming the options, never the token
    refused = CliRunner().invoke(cli, args, env={"SFBULK_REGISTRY_KEY": ""}, catch_exceptions=False)
    assert refused.exit_code == 1
    assert "is encrypted, and no registry key is configured" in refused.output
    assert "--registry-key-file" in refused.output


def test_load_and_extract_share_the_postgresql_registry(
    tmp_path: Path, emulator_factory: Any, pg_registry_url: str
) -> None:
    emu = emulator_factory()
    creds = emu.credentials
    env = {
        "SFBULK_API_URL": emu.base_url,
        "SFBULK_REFRESH_TOKEN": creds["refresh_token"],
        "SFBULK_CLIENT_ID": creds["client_id"],
        "SFBULK_CLIENT_SECRET": creds["client_secret"],
        "SFBULK_TOKEN_ENDPOINT": emu.base_url,
        "SFBULK_REGISTRY": pg_registry_url,
    }
    source = tmp_path / "contacts.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["LastName", "Email"])
        writer.writerows([f"Pg{i}", f"pg{i}@example.com"] for i in range(50))
    runner = CliRunner()
    loaded = runner.invoke(cli, ["load", str(source), "--object", "Contact", "--no-progress"], env=env)
    assert loaded.exit_code == 0, loaded.output
    token = _rows(pg_registry_url)[TOKEN_KEY]
    out = tmp_path / "out.csv"
    extracted = runner.invoke(
        cli,
        ["extract", "SELECT Email FROM Contact WHERE Email LIKE 'pg%'", "--out", str(out), "--no-progress"],
        env=env,
    )
    assert extracted.exit_code == 0, extracted.output
    assert len(out.read_text().splitlines()) == 51
    assert _rows(pg_registry_url)[TOKEN_KEY] == token  # the cached token was reused, not granted again


def test_serve_says_which_registry_and_hides_the_password(postgres_server: Any, tmp_path: Path) -> None:
    url = postgres_server.url(table="serve_banner").replace("postgres@", "postgres:hunter2@")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sfbulk", "serve", str(REPO / "tests/data/server/echo_proxy.xml")]
        + ["--port", "0", "--registry", url, "--no-access-log"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "registry PostgreSQL postgresql://postgres:***@" in banner and "table serve_banner" in banner
        assert "hunter2" not in banner
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


# -- errors the user can act on ---------------------------------------------------------------------


class _Outcome:
    """``sfbulk serve``'s exit status and output when it refuses to start (in-process: no server runs)."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _serve_error(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> _Outcome:
    result = CliRunner().invoke(
        cli, ["serve", str(REPO / "tests/data/server/echo_proxy.xml"), "--port", "0", *args], env=env
    )
    assert result.exit_code != 0, "the server started"
    return _Outcome(result.exit_code, result.stdout, result.stderr)


def test_no_server_at_the_url_is_a_start_up_error_naming_the_option(tmp_path: Path) -> None:
    result = _serve_error(
        tmp_path, "--registry", "postgresql://sfbulk:hunter2@127.0.0.1:1/reg?connect_timeout=3"
    )
    assert result.returncode == 2
    assert (
        "cannot connect to the PostgreSQL registry postgresql://sfbulk:***@127.0.0.1:1/reg" in result.stderr
    )
    assert "(--registry)" in result.stderr and "the server was not started" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout and "Traceback" not in result.stderr


def test_an_unknown_scheme_and_a_bad_table_name_are_refused(tmp_path: Path) -> None:
    result = _serve_error(tmp_path, "--registry", "mysql://u:pw@db/x")
    assert result.returncode == 2
    assert "the mysql:// scheme is not a registry store" in result.stderr and "pw@" not in result.stderr
    with pytest.raises(RegistryError, match="table='x;drop' is not a table name"):
        open_registry("postgresql://u@127.0.0.1:1/db?table=x;drop")


def test_without_psycopg_the_error_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from sfbulk.cli import main\n"
        "sys.argv = ['sfbulk', 'serve', sys.argv[1], '--port', '0', '--registry', 'postgresql://u@127.0.0.1:1/d']\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "tests/data/server/echo_proxy.xml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "--registry postgresql://... needs psycopg 3" in result.stderr
    assert "pip install 'sfbulk[postgresql]'" in result.stderr


def test_bad_key_files_name_the_file_and_line(tmp_path: Path) -> None:
    loose = _key_file(tmp_path, generate_key())
    loose.chmod(0o644)
    result = _serve_error(tmp_path, "--registry", str(tmp_path / "reg"), "--registry-key-file", str(loose))
    assert result.returncode == 2 and "readable by other users; chmod 600 it" in result.stderr
    loose.chmod(0o600)
    loose.write_text("# keys\nnot-a-key\n")
    result = _serve_error(tmp_path, "--registry", str(tmp_path / "reg"), "--registry-key-file", str(loose))
    assert result.returncode == 2
    assert f"line 2 of --registry-key-file {loose} is not a registry key" in result.stderr
    assert "not-a-key" not in result.stderr  # a mistyped key may be most of a real one
    result = _serve_error(tmp_path, "--registry", str(tmp_path / "reg"), env={"SFBULK_REGISTRY_KEY": "short"})
    assert result.returncode == 2 and "SFBULK_REGISTRY_KEY is not a registry key" in result.stderr


# -- the lock and the connections ------------------------------------------------------------------


def _hold_lock_forever(url: str, ready: Any) -> None:
    registry = open_registry(url, environ={})
    with registry.lock("connectors/SalesforceBulk/identities/x/lock"):
        ready.set()
        time.sleep(600)


def test_a_killed_holders_lock_is_freed_at_once(pg_registry_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_lock_forever, args=(pg_registry_url, ready))
    holder.start()
    try:
        assert ready.wait(60)
        registry = open_registry(pg_registry_url, environ={})
        with pytest.raises(RegistryError, match="another process or host holds it"):
            with registry.lock("connectors/SalesforceBulk/identities/x/lock", timeout=0.2):
                pass
        os.kill(holder.pid or 0, signal.SIGKILL)
        started = time.monotonic()
        with registry.lock("connectors/SalesforceBulk/identities/x/lock", timeout=20):
            waited = time.monotonic() - started
        assert waited < 5, waited
    finally:
        holder.kill()
        holder.join(10)


def test_a_waiter_gets_the_lock_as_soon_as_it_is_released(pg_registry_url: str) -> None:
    holder, waiter = open_registry(pg_registry_url, environ={}), open_registry(pg_registry_url, environ={})
    released = threading.Event()
    got: list[float] = []

    def wait_for_it() -> None:
        with waiter.lock("k/lock", timeout=10):
            got.append(time.monotonic())

    with holder.lock("k/lock"):
        thread = threading.Thread(target=wait_for_it)
        thread.start()
        time.sleep(0.5)
        assert got == []
        released.set()
        at = time.monotonic()
    thread.join(10)
    assert got and got[0] - at < 0.5  # woken by the release, not by a polling interval


def test_connections_dropped_by_the_server_are_replaced(pg_registry_url: str) -> None:
    registry = open_registry(pg_registry_url, environ={})
    registry.put("a/b", "1")
    assert isinstance(registry, PostgresRegistry)
    with _pg_connect(**registry._params, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'sfbulk' AND pid <> pg_backend_pid()"
        ).fetchone()
    assert killed and killed[0] >= 1
    assert registry.get("a/b") == "1"  # the dead pooled connection is retried on a new one
    registry.put("a/b", "2")
    assert registry.get("a/b") == "2"


def _open_fresh_table(url: str, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(30)
        open_registry(url, environ={}).put("started/by", str(os.getpid()))
        results.put(None)
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")


def test_several_hosts_creating_the_table_at_once_all_succeed(pg_registry_url: str) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    workers = [
        ctx.Process(target=_open_fresh_table, args=(pg_registry_url, barrier, results)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    errors = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(10)
    assert errors == [None] * 4
    assert set(_rows(pg_registry_url)) == {"started/by"}


def test_a_forked_child_uses_connections_of_its_own(pg_registry_url: str) -> None:
    registry = open_registry(pg_registry_url, environ={})
    registry.put("fork/x", "parent")
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()

    def child() -> None:
        try:
            registry.put("fork/x", "child")
            with registry.lock("fork/lock", timeout=5):
                results.put(registry.get("fork/x"))
        except Exception as exc:
            results.put(f"{type(exc).__name__}: {exc}")

    process = ctx.Process(target=child)
    process.start()
    assert results.get(timeout=30) == "child"
    process.join(10)
    assert registry.get("fork/x") == "child"  # the parent's connections survived the child's exit
    with registry.lock("fork/lock", timeout=5):
        pass


def test_load_with_an_unusable_registry_is_a_usage_error(tmp_path: Path) -> None:
    env = {
        "SFBULK_API_URL": "http://127.0.0.1:9",
        "SFBULK_REFRESH_TOKEN": "r",
        "SFBULK_CLIENT_ID": "c",
        "SFBULK_CLIENT_SECRET": "s",
        "SFBULK_REGISTRY": "postgresql://sfbulk:hunter2@127.0.0.1:1/reg?connect_timeout=3",
    }
    source = tmp_path / "in.csv"
    source.write_text("LastName\nX\n")
    result = CliRunner().invoke(cli, ["load", str(source), "--object", "Contact", "--no-progress"], env=env)
    assert result.exit_code == 2, result.output
    assert (
        "cannot connect to the PostgreSQL registry postgresql://sfbulk:***@127.0.0.1:1/reg" in result.output
    )
    assert "hunter2" not in result.output


def test_a_role_without_create_is_told_how_to_make_the_table(postgres_server: Any) -> None:
    admin_url = postgres_server.url()
    with _pg_connect(admin_url, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS sfbulk_reader")
        admin.execute("CREATE ROLE sfbulk_reader LOGIN")
    url = admin_url.replace("postgres@", "sfbulk_reader@") + "?table=not_there"
    with pytest.raises(RegistryError) as caught:
        open_registry(url, environ={})
    message = str(caught.value)
    assert "cannot create the registry table not_there" in message and "(--registry)" in message
    assert "permission denied" in message and "docs/registry.md" in message


def test_the_python_api_takes_the_url_where_it_takes_a_folder(
    emulator: Any, pg_registry_url: str, tmp_path: Path
) -> None:
    from sfbulk.connector.connection import Connector
    from sfbulk.engine.engine import Engine

    creds = emulator.credentials
    params = dict(
        apiUrl=emulator.base_url,
        accessToken="",
        refreshToken=creds["refresh_token"],
        clientId=creds["client_id"],
        clientSecret=creds["client_secret"],
        tokenEndpointHostname=emulator.base_url,
    )
    with Connector.load().connection(registry=pg_registry_url, **params) as conn:
        assert isinstance(conn.auth.registry, PostgresRegistry)
        assert conn.invoke("createJob", operation="insert", object="Contact", contentType="CSV").status == 201
    assert _rows(pg_registry_url)[TOKEN_KEY]
    with Engine(registry=pg_registry_url) as engine:
        assert isinstance(engine.registry, PostgresRegistry)
        assert engine.registry.get(TOKEN_KEY) == _rows(pg_registry_url)[TOKEN_KEY]
