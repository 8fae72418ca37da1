"""Issue 11 points 1, 2 and 6 through our real server: no caller uses, poisons or redirects another's session.

The server is built as `sfbulk serve --token-endpoint <emulator>` builds it (the default outbound
allow-list: Salesforce's domains plus the token endpoint's host:port). Attackers are callers of the
seed proxy and of the dispatcher proxy (examples/synapse/); the "attacker's listener" is a real
HTTP server on loopback that plays a token endpoint and a Bulk API, and records what reaches it.
"""

from __future__ import annotations

import gc
import http.server
import json
import re
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from lxml import etree

from sfbulk.cli.settings import Settings, build_host_policy
from sfbulk.connector.connection import Connector
from sfbulk.engine.engine import Engine
from sfbulk.registry import LOCK_STRIPES
from sfbulk.secrets import Redactor, default_redactor
from sfbulk.transport import HOST_NOT_ALLOWED_CODE, RequestsTransport

REPO = Path(__file__).resolve().parents[2]
SYNAPSE = REPO / "examples" / "synapse"
SEED = SYNAPSE / "salesforcebulk_createJob.xml"
DISPATCHER = SYNAPSE / "salesforcebulk_dispatcher.xml"
FAULT_SEQ = SYNAPSE / "faultHandlerSeq.xml"
REG_PATH = "connectors/SalesforceBulk"
NS = "{http://www.force.com/2009/06/asyncapi/dataload}"
FORGED_JOB = "750FORGEDFORGED0AAA"


class Listener:
    """The attacker's server: a token endpoint handing out a forged token whose instance_url is itself,
    and a Bulk API answering every job POST with a forged 201. Records every request it gets."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        self.instance_url: str | None = None  # what its token answers name as instance_url (None: itself)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append((self.command, self.path, body))
                if self.path.startswith("/services/oauth2/token"):
                    data = json.dumps(
                        {"access_token": "forged-token", "instance_url": outer.instance_url or outer.url}
                    ).encode()
                    status, kind = 200, "application/json"
                else:
                    data = (
                        f'<jobInfo xmlns="{NS[1:-1]}"><id>{FORGED_JOB}</id><operation>insert</operation>'
                        "<object>Contact</object><state>Open</state><contentType>CSV</contentType>"
                        "</jobInfo>"
                    ).encode()
                    status, kind = 201, "application/xml"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer  # noqa: N815 - http.server naming

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    server = Listener()
    try:
        yield server
    finally:
        server.close()


def serve(sfbulk_server, tmp_path, emulator, *configs, allow=()):
    """Our server as `sfbulk serve CONFIGS --token-endpoint <emulator> [--allow-host ...]` runs it."""
    policy = build_host_policy(emulator.base_url, Settings(), allow)
    engine = Engine(
        registry=str(tmp_path / "registry"),
        init_defaults={"salesforcebulk": {"tokenEndpointHostname": emulator.base_url}},
        transport=RequestsTransport(host_policy=policy),
    )
    engine.load(*configs)
    server = sfbulk_server(engine=engine, registry=tmp_path / "registry")
    return server


def body(root: str, fields: dict[str, str]) -> bytes:
    return (
        f"<{root}>".encode()
        + "".join(f"<{k}>{v}</{k}>" for k, v in fields.items()).encode()
        + f"</{root}>".encode()
    )


def victim_fields(emulator, access_token: str = "", **extra: str) -> dict[str, str]:
    creds = emulator.credentials
    return {
        "apiVersion": "34.0",
        "accessToken": access_token,
        "apiUrl": emulator.base_url,
        "refreshToken": creds["refresh_token"],
        "clientId": creds["client_id"],
        "clientSecret": creds["client_secret"],
        "intervalTime": "1000000",
        "registryPath": REG_PATH,
        "operation": "insert",
        "contentType": "CSV",
        "object": "Contact",
        **extra,
    }


def bogus_fields(emulator, **extra: str) -> dict[str, str]:
    return victim_fields(
        emulator,
        refreshToken="bogus-refresh-" + secrets.token_hex(4),
        clientId="bogus-client-" + secrets.token_hex(4),
        clientSecret="bogus-secret",
        **extra,
    )


def post(server, proxy: str, data: bytes, action: str | None = None) -> requests.Response:
    headers = {"Content-Type": "application/xml"}
    if action:
        headers["Action"] = f"urn:{action}"
    return requests.post(server.service_url(proxy), data=data, headers=headers, timeout=30)


def job_id_of(response: requests.Response) -> str:
    assert response.status_code == 201, response.text
    return etree.fromstring(response.content).findtext(f"{NS}id")


def real_job(emulator, access_token: str, job_id: str) -> int:
    return requests.get(
        f"{emulator.base_url}/services/async/34.0/job/{job_id}",
        headers={"X-SFDC-Session": access_token},
        timeout=10,
    ).status_code


def fault(response: requests.Response) -> tuple[str, str]:
    root = etree.fromstring(response.content)
    return root.findtext("code") or "", root.findtext("message") or ""


def registry_files(root: Path) -> dict[str, str]:
    """Every resource of the registry (not its lock folder), path → content."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): p.read_bytes().decode("utf-8", "replace")
        for p in root.rglob("*")
        if p.is_file() and ".locks" not in p.parts
    }


# --- session hijack -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxy", "action"), [("salesforcebulk_createJob", None), ("salesforcebulk_dispatcher", "createJob")]
)
@pytest.mark.parametrize("attacker_token", ["", "bogus-access-token"])
def test_bogus_credentials_never_get_another_callers_cached_token(
    sfbulk_server, tmp_path, emulator, access_token, proxy, action, attacker_token, caplog
):
    server = serve(sfbulk_server, tmp_path, emulator, SEED, DISPATCHER, FAULT_SEQ)
    victim = post(server, proxy, body("createJob", victim_fields(emulator, access_token)), action)
    assert real_job(emulator, access_token, job_id_of(victim)) == 200
    before = registry_files(server.registry_root)
    assert before[f"{REG_PATH}/accessToken"] == access_token  # the WSO2 layout, the victim's token

    attack = post(
        server, proxy, body("createJob", bogus_fields(emulator, accessToken=attacker_token)), action
    )
    assert attack.status_code != 201, attack.text
    assert b"<jobInfo" not in attack.content and access_token not in attack.text
    assert fault(attack)  # the fault sequence answered
    assert "check refreshToken, clientId and clientSecret" in caplog.text  # its own grant, refused
    assert registry_files(server.registry_root) == before  # nothing written for the failed grant

    again = post(server, proxy, body("createJob", victim_fields(emulator, access_token)), action)
    assert real_job(emulator, access_token, job_id_of(again)) == 200


def test_the_victims_client_id_with_a_wrong_refresh_token_gets_nothing(
    sfbulk_server, tmp_path, emulator, access_token
):
    server = serve(sfbulk_server, tmp_path, emulator, SEED, FAULT_SEQ)
    job_id_of(
        post(server, "salesforcebulk_createJob", body("createJob", victim_fields(emulator, access_token)))
    )
    fields = victim_fields(emulator, refreshToken="guessed-refresh-token")
    attack = post(server, "salesforcebulk_createJob", body("createJob", fields))
    assert attack.status_code != 201 and access_token not in attack.text


@pytest.mark.slow
def test_200_bogus_requests_leave_the_registry_untouched(sfbulk_server, tmp_path, emulator, access_token):
    server = serve(sfbulk_server, tmp_path, emulator, SEED, FAULT_SEQ)
    job_id_of(
        post(server, "salesforcebulk_createJob", body("createJob", victim_fields(emulator, access_token)))
    )
    before = registry_files(server.registry_root)

    def attack(i: int) -> int:
        path = REG_PATH if i % 2 else f"attack/{i}/x"
        data = body(
            "createJob", bogus_fields(emulator, accessToken=f"bogus-{i}" if i % 3 else "", registryPath=path)
        )
        return post(server, "salesforcebulk_createJob", data).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(attack, range(200)))
    assert 201 not in statuses
    assert registry_files(server.registry_root) == before
    locks = server.registry_root / ".locks"
    assert (
        len(list(locks.iterdir())) <= LOCK_STRIPES
    )  # lock files are striped: bogus keys cannot fill the folder


def test_requests_with_distinct_secrets_leave_connections_and_masked_values_bounded(
    sfbulk_server, tmp_path, emulator, monkeypatch
):
    """Callers choose the init parameters: each made-up refresh token and client secret used to
    keep a cached connection and two masked values for ever, the values in one regular expression
    compiled again at every new one (minutes of CPU for a few thousand requests)."""
    monkeypatch.setattr(Connector, "cache_limit", 16)
    monkeypatch.setattr(Redactor, "recent_limit", 32)
    server = serve(sfbulk_server, tmp_path, emulator, SEED, FAULT_SEQ)
    connector = server.engine.connector("salesforcebulk")
    gc.collect()
    before = len(default_redactor)

    def attack(i: int) -> int:
        fields = victim_fields(
            emulator, refreshToken=f"made-up-refresh-{i:05d}", clientSecret=f"made-up-secret-{i:05d}"
        )
        return post(server, "salesforcebulk_createJob", body("createJob", fields)).status_code

    counts = []
    for wave in range(2):
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(attack, range(wave * 100, (wave + 1) * 100)))
        assert set(statuses) == {500}  # every made-up identity is refused by the token endpoint
        assert len(connector._cache) <= Connector.cache_limit
        gc.collect()
        counts.append(len(default_redactor) - before)
    # the cached connections' secrets and the window of released ones, whatever the traffic
    assert counts[0] <= 2 * Connector.cache_limit + Redactor.recent_limit
    assert counts[1] <= counts[0]


def test_two_real_identities_keep_two_entries_and_never_cross(sfbulk_server, tmp_path, emulator_factory):
    """Two orgs (two emulators, the same public demo app) on one registryPath: each keeps its own token."""
    first, second = emulator_factory(), emulator_factory()
    engine = Engine(
        registry=str(tmp_path / "registry"),
        transport=RequestsTransport(host_policy=build_host_policy(None, Settings(), ["127.0.0.1:*"])),
    )
    engine.load(DISPATCHER, FAULT_SEQ)
    server = sfbulk_server(engine=engine, registry=tmp_path / "registry")
    jobs = {}
    for _round in range(2):
        for emu in (first, second):
            fields = victim_fields(emu, tokenEndpointHostname=emu.base_url)
            jobs.setdefault(emu.base_url, []).append(
                job_id_of(post(server, "salesforcebulk_dispatcher", body("createJob", fields), "createJob"))
            )
    files = registry_files(server.registry_root)
    tokens = {k: v for k, v in files.items() if k.endswith("/accessToken")}
    assert len(tokens) == 2 and f"{REG_PATH}/accessToken" in tokens  # the first owns the WSO2 layout
    (other,) = [k for k in tokens if k != f"{REG_PATH}/accessToken"]
    assert re.fullmatch(rf"{REG_PATH}/identities/[0-9a-f]{{40}}/accessToken", other)
    for emu, token in ((first, tokens[f"{REG_PATH}/accessToken"]), (second, tokens[other])):
        for job in jobs[emu.base_url]:
            assert real_job(emu, token, job) == 200
    # only keyed hashes of the identity are stored: no client secret or refresh token in any file
    creds = first.credentials
    assert not [k for k, v in files.items() if creds["refresh_token"] in v or creds["client_secret"] in v]
    assert all(re.fullmatch(r"[0-9a-f]{64}", v) for k, v in files.items() if k.endswith("/identity"))


# --- registry poisoning and redirection ----------------------------------------------------------


def test_poisoning_through_the_dispatcher_does_not_change_the_victims_next_request(
    sfbulk_server, tmp_path, emulator, access_token, listener
):
    # The operator even allowed loopback: the identity binding alone must protect the victim.
    server = serve(sfbulk_server, tmp_path, emulator, DISPATCHER, FAULT_SEQ, allow=["127.0.0.1:*"])
    victim = victim_fields(emulator, access_token, tokenEndpointHostname=emulator.base_url)
    job_id_of(post(server, "salesforcebulk_dispatcher", body("createJob", victim), "createJob"))
    stored = registry_files(server.registry_root)

    # The attacker knows the (public demo) client id, refresh token and secret, forces a refresh with
    # intervalTime=0 at its own token endpoint, into the victim's registryPath.
    poison = {**victim, "accessToken": "", "intervalTime": "0", "tokenEndpointHostname": listener.url}
    answer = post(server, "salesforcebulk_dispatcher", body("createJob", poison), "createJob")
    assert answer.status_code == 201 and FORGED_JOB in answer.text  # it only fooled itself
    assert listener.requests  # its own grant went to its own listener
    files = registry_files(server.registry_root)
    assert {k: v for k, v in files.items() if k.startswith(f"{REG_PATH}/") and "/identities/" not in k} == {
        k: v for k, v in stored.items() if k.startswith(f"{REG_PATH}/")
    }

    listener.requests.clear()
    after = post(server, "salesforcebulk_dispatcher", body("createJob", victim), "createJob")
    job = job_id_of(after)
    assert job != FORGED_JOB and real_job(emulator, access_token, job) == 200
    assert listener.requests == []  # nothing of the victim's reached the attacker's listener


def test_poisoning_through_the_seed_proxy_does_not_change_the_victims_next_request(
    sfbulk_server, tmp_path, emulator, access_token, listener
):
    server = serve(sfbulk_server, tmp_path, emulator, SEED, FAULT_SEQ, allow=["127.0.0.1:*"])
    job_id_of(
        post(server, "salesforcebulk_createJob", body("createJob", victim_fields(emulator, access_token)))
    )
    stored = registry_files(server.registry_root)
    # the seed proxy reads no tokenEndpointHostname: the attacker forces a refresh and names its own apiUrl
    poison = victim_fields(emulator, "", intervalTime="0", apiUrl=listener.url)
    post(server, "salesforcebulk_createJob", body("createJob", poison))
    base = {k: v for k, v in registry_files(server.registry_root).items() if "/identities/" not in k}
    assert base == stored
    listener.requests.clear()
    after = post(server, "salesforcebulk_createJob", body("createJob", victim_fields(emulator, access_token)))
    assert real_job(emulator, access_token, job_id_of(after)) == 200
    assert listener.requests == []


# --- the outbound allow-list -----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["apiUrl", "tokenEndpointHostname"])
def test_hosts_outside_the_allow_list_are_refused_before_any_connection(
    sfbulk_server, tmp_path, emulator, listener, field
):
    server = serve(sfbulk_server, tmp_path, emulator, DISPATCHER, FAULT_SEQ)
    fields = {**victim_fields(emulator, tokenEndpointHostname=emulator.base_url), field: listener.url}
    answer = post(server, "salesforcebulk_dispatcher", body("createJob", fields), "createJob")
    code, message = fault(answer)
    assert answer.status_code == 500 and code == str(HOST_NOT_ALLOWED_CODE)  # FAULT_SEQ: HTTP_SC=500
    port = listener.url.rsplit(":", 1)[1]
    assert f"{field} refused: host 127.0.0.1:{port} is not in the outbound allow-list" in message
    assert listener.requests == []  # not even a connection attempt reached it
    assert registry_files(server.registry_root) == {}


def test_an_instance_url_from_the_token_endpoint_is_checked_too(sfbulk_server, tmp_path, listener):
    """An allowed token endpoint (the operator's --token-endpoint) that sends calls elsewhere is refused."""
    engine = Engine(
        registry=str(tmp_path / "registry"),
        transport=RequestsTransport(host_policy=build_host_policy(listener.url, Settings(), [])),
    )
    engine.load(DISPATCHER, FAULT_SEQ)
    server = sfbulk_server(engine=engine, registry=tmp_path / "registry")
    listener.instance_url = "http://127.0.0.1:9"  # the discard port: never contacted
    fields = {
        "apiVersion": "34.0",
        "apiUrl": "https://ap2.salesforce.com",
        "refreshToken": "r",
        "clientId": "c",
        "clientSecret": "s",
        "tokenEndpointHostname": listener.url,
        "operation": "insert",
        "contentType": "CSV",
        "object": "Contact",
    }
    answer = post(server, "salesforcebulk_dispatcher", body("createJob", fields), "createJob")
    code, message = fault(answer)
    assert code == str(HOST_NOT_ALLOWED_CODE), message
    assert "the instance_url returned by the token endpoint" in message and "127.0.0.1:9 " in message
    assert [r[1] for r in listener.requests] == ["/services/oauth2/token"]  # and nothing after it
    assert registry_files(server.registry_root) == {}


def _call_proxy(tmp_path: Path, template: str) -> Path:
    path = tmp_path / "call_proxy.xml"
    path.write_text(f"""<proxy xmlns="http://ws.apache.org/ns/synapse" name="relay">
  <target><inSequence>
    <property name="uri.var.target" expression="//target/text()"/>
    <property name="uri.var.path" expression="//path/text()"/>
    <call><endpoint><http method="GET" uri-template="{template}"/></endpoint></call>
    <respond/>
  </inSequence></target>
</proxy>""")
    return path


def test_a_dynamic_call_uri_template_is_checked_and_a_literal_one_is_trusted(
    sfbulk_server, tmp_path, emulator, listener
):
    dynamic = serve(sfbulk_server, tmp_path / "a", emulator, _call_proxy(tmp_path, "{uri.var.target}/x"))
    answer = post(dynamic, "relay", f"<r><target>{listener.url}</target></r>".encode())
    code, message = fault(answer)
    assert code == str(HOST_NOT_ALLOWED_CODE) and "uri-template" in message
    assert listener.requests == []
    # the operator wrote the host: trusted, even though it is not on the list; only the path varies
    (tmp_path / "b").mkdir()
    literal = serve(
        sfbulk_server,
        tmp_path / "b",
        emulator,
        _call_proxy(tmp_path / "b", f"{listener.url}/{{uri.var.path}}"),
    )
    answer = post(literal, "relay", b"<r><path>services-x</path></r>")
    assert answer.status_code == 201 and [r[1] for r in listener.requests] == ["/services-x"]


def test_the_readme_tour_shape_is_allowed_by_default(sfbulk_server, tmp_path, emulator):
    """`sfbulk serve examples/synapse/ --token-endpoint URL` + examples/createJob.xml pointed at that URL."""
    server = serve(sfbulk_server, tmp_path, emulator, SYNAPSE)
    text = (
        (REPO / "examples" / "createJob.xml").read_text().replace("http://127.0.0.1:8281", emulator.base_url)
    )
    answer = requests.post(
        server.service_url("salesforcebulk_createJob"),
        data=text.encode(),
        headers={"Content-Type": "text/xml"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
