"""One contract, every store: the file registry and the PostgreSQL registry (a real server, see
tests/fixtures/postgres.py) pass the same tests: get/put/delete, canonical keys, confinement,
collections, versions, the identity key, locks, encryption at rest, and N processes making one grant
per expiry."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sfbulk.connector.connection import Connector
from sfbulk.errors import RegistryError
from sfbulk.registry import (
    MAX_KEY_LENGTH,
    FileRegistry,
    Registry,
    RegistryCipher,
    open_registry,
    split_key,
)
from sfbulk.registry.crypto import SEALED_PREFIX, generate_key

STORES = ["file", "postgresql"]


@pytest.fixture(params=STORES)
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """What a user writes after --registry: a folder, or a PostgreSQL URL (a table of this test's own)."""
    if request.param == "file":
        return str(tmp_path / "registry")
    return str(request.getfixturevalue("pg_registry_url"))


@pytest.fixture
def make(spec: str) -> Iterator[Callable[..., Registry]]:
    """``make(cipher=None)``: a new registry object on the same store (as another process would open it)."""
    opened: list[Registry] = []

    def factory(cipher: RegistryCipher | None = None) -> Registry:
        registry = open_registry(spec, cipher=cipher, environ={})
        opened.append(registry)
        return registry

    yield factory
    for registry in opened:
        registry.close()


@pytest.fixture
def reg(make: Callable[..., Registry]) -> Registry:
    return make()


def raw(registry: Registry, key: str) -> str | None:
    """The text the store holds for ``key``, as an operator reading the files or the table sees it."""
    if isinstance(registry, FileRegistry):
        path = registry.path(key)
        return path.read_text("utf-8") if path.exists() else None
    import psycopg

    from sfbulk.registry import canonical_key

    with psycopg.connect(**registry._params) as conn:  # type: ignore[attr-defined]
        row = conn.execute(
            f"SELECT value FROM {registry.table} WHERE key = %s",  # type: ignore[attr-defined]
            (canonical_key(key),),
        ).fetchone()
    return None if row is None else str(row[0])


# -- resources ------------------------------------------------------------------------------------


def test_put_get_delete_round_trip(reg: Registry) -> None:
    assert reg.get("connectors/SalesforceBulk/accessToken") is None
    reg.put("connectors/SalesforceBulk/accessToken", "tok-1", secret=True)
    reg.put("connectors/SalesforceBulk/time", "1700000000000")
    assert reg.get("connectors/SalesforceBulk/accessToken") == "tok-1"
    assert reg.get("connectors/SalesforceBulk/time") == "1700000000000"
    reg.put("connectors/SalesforceBulk/accessToken", "tok-2", secret=True)
    assert reg.get("connectors/SalesforceBulk/accessToken") == "tok-2"
    reg.delete("connectors/SalesforceBulk/accessToken")
    reg.delete("connectors/SalesforceBulk/accessToken")  # idempotent
    assert reg.get("connectors/SalesforceBulk/accessToken") is None
    assert reg.get("connectors/SalesforceBulk/time") == "1700000000000"


def test_values_are_kept_exactly(reg: Registry) -> None:
    values = {"empty": "", "unicode": "žluťoučký kůň 🐎", "big": "x" * 200_000, "lines": "a\nb\r\n\tc "}
    for name, value in values.items():
        reg.put(f"v/{name}", value)
    assert {name: reg.get(f"v/{name}") for name in values} == values


def test_a_write_is_seen_by_another_registry_object_at_once(make: Callable[..., Registry]) -> None:
    first, second = make(), make()
    first.put("shared/x", "1")
    assert second.get("shared/x") == "1"
    second.put("shared/x", "2")
    assert first.get("shared/x") == "2"


@pytest.mark.parametrize(
    ("spellings", "canonical"),
    [
        (["conf:a/b", "config/a/b", "conf:/a/b"], "config/a/b"),
        (["gov:x/y", "governance/x/y", "gov:/x/y"], "governance/x/y"),
        (["local:z", "local/z"], "local/z"),
        (["a//b/", "a/b", "a/b/"], "a/b"),
    ],
)
def test_aliases_name_one_resource(reg: Registry, spellings: list[str], canonical: str) -> None:
    for number, spelling in enumerate(spellings):
        reg.put(spelling, f"value-{number}")
        assert {reg.get(s) for s in spellings} == {f"value-{number}"}
    assert reg.get(canonical) == f"value-{len(spellings) - 1}"
    reg.delete(spellings[0])
    assert all(reg.get(s) is None for s in spellings)


BAD_KEYS = [
    "",
    "   ",
    "../outside",
    "a/../../b",
    "a/./b",
    "/etc/passwd",
    "conf://x",
    "C:/x",
    "a\\b",
    "a\x00b",
    ".locks/stripe",
    "a/.sfbulk-identity-key",
    ".sfbulk-tmp.x",
    "k" * (MAX_KEY_LENGTH + 1),
    "/".join(["s"] * 65),
    "a/" + "é" * 128,
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=range(len(BAD_KEYS)))
def test_confinement_refuses_the_same_keys_with_the_same_words(reg: Registry, key: str) -> None:
    with pytest.raises(RegistryError) as expected:
        split_key(key)
    for operation in (
        lambda: reg.get(key),
        lambda: reg.put(key, "v"),
        lambda: reg.delete(key),
        lambda: reg.lock(key).__enter__(),
    ):
        with pytest.raises(RegistryError) as caught:
            operation()
        assert str(caught.value) == str(expected.value)


def test_a_key_is_a_resource_or_a_collection_never_both(reg: Registry) -> None:
    reg.put("tree/leaf", "1")
    with pytest.raises(RegistryError, match="collection"):
        reg.get("tree")
    with pytest.raises(RegistryError, match="collection"):
        reg.put("tree", "x")
    with pytest.raises(RegistryError, match="'leaf'"):
        reg.put("tree/leaf/deeper", "x")
    with pytest.raises(RegistryError, match="'leaf'"):
        reg.get("tree/leaf/deeper")
    assert reg.get("tree/leaf") == "1"


def test_version_changes_with_every_write_only(reg: Registry) -> None:
    missing = reg.version("ver/k")
    reg.put("ver/k", "1")
    first = reg.version("ver/k")
    assert first is not None and first != missing
    assert reg.version("ver/k") == first
    reg.put("ver/k", "1")  # the same text again is still a write
    second = reg.version("ver/k")
    assert second != first
    reg.delete("ver/k")
    assert reg.version("ver/k") == missing


def test_another_openers_write_changes_the_version_of_a_token_entry(make: Callable[..., Registry]) -> None:
    reader, writer = make(), make()
    writer.put("entry/accessToken", "1", secret=True)
    writer.put("entry/time", "1")
    before = (reader.version("entry/accessToken"), reader.version("entry/time"))
    writer.put("entry/time", "2")
    time.sleep(0.05)  # past any per-call snapshot of the entry's versions
    assert (reader.version("entry/accessToken"), reader.version("entry/time")) != before
    assert reader.version("entry/accessToken") == before[0]


def test_the_identity_key_is_created_once_for_every_opener(make: Callable[..., Registry]) -> None:
    first, second = make(), make()
    assert first.identity_key() is None
    made = first.identity_key(create=True)
    assert made is not None and len(made) == 32
    assert second.identity_key(create=True) == made
    assert make().identity_key() == made


# -- locks ----------------------------------------------------------------------------------------


def _in_thread(work: Callable[[], object]) -> object:
    """``work()``'s result, or the exception it raised, run in another thread (another lock owner)."""
    box: list[object] = []

    def run() -> None:
        try:
            box.append(work())
        except Exception as exc:
            box.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return box[0]


def _take(registry: Registry, key: str, timeout: float) -> str:
    with registry.lock(key, timeout=timeout):
        return "acquired"


def test_lock_excludes_another_opener_and_names_key_and_timeout(make: Callable[..., Registry]) -> None:
    holder, other = make(), make()
    with holder.lock("connectors/X/lock"):
        with holder.lock("connectors/X/lock", timeout=0):  # re-entrant in the holding thread
            pass
        started = time.monotonic()
        refused = _in_thread(lambda: _take(other, "connectors//X/lock/", 0.3))  # an alias: the same lock
        waited = time.monotonic() - started
        assert isinstance(refused, RegistryError)
        assert "'connectors//X/lock/'" in str(refused) and "0.3 s" in str(refused)
        assert 0.25 <= waited < 5
        tried = _in_thread(lambda: _take(other, "connectors/X/lock", 0))
        assert isinstance(tried, RegistryError) and "within 0 s" in str(tried)
        assert _in_thread(lambda: _take(other, "connectors/Y/lock", 1)) == "acquired"  # another key is free
    assert _in_thread(lambda: _take(other, "connectors/X/lock", 2)) == "acquired"


def test_lock_is_reentrant_in_a_thread_and_exclusive_between_threads(reg: Registry) -> None:
    order: list[str] = []
    with reg.lock("k/lock"):
        with reg.lock("k/lock", timeout=0):
            order.append("nested")

        def contender() -> None:
            try:
                with reg.lock("k/lock", timeout=0.2):
                    order.append("contender got it while held")
            except RegistryError:
                order.append("contender timed out")

        thread = threading.Thread(target=contender)
        thread.start()
        thread.join(10)
    assert order == ["nested", "contender timed out"]
    got: list[bool] = []

    def later() -> None:
        with reg.lock("k/lock", timeout=5):
            got.append(True)

    thread = threading.Thread(target=later)
    thread.start()
    thread.join(10)
    assert got == [True]


# -- encryption at rest ---------------------------------------------------------------------------


def test_secrets_are_encrypted_at_rest_with_a_key(make: Callable[..., Registry]) -> None:
    cipher = RegistryCipher.from_text(generate_key(), source="test")
    reg = make(cipher)
    reg.put("enc/accessToken", "00Dxx!secret-token", secret=True)
    reg.put("enc/time", "1700000000000")
    stored = raw(reg, "enc/accessToken")
    assert stored is not None and stored.startswith(SEALED_PREFIX) and "secret-token" not in stored
    assert raw(reg, "enc/time") == "1700000000000"  # not a secret: as the WSO2 layout has it
    assert reg.get("enc/accessToken") == "00Dxx!secret-token"
    assert make(cipher).get("enc/accessToken") == "00Dxx!secret-token"


def test_wrong_or_missing_key_is_a_clear_error_without_the_secret(make: Callable[..., Registry]) -> None:
    cipher = RegistryCipher.from_text(generate_key(), source="test")
    make(cipher).put("enc/accessToken", "the-token-value", secret=True)
    with pytest.raises(RegistryError) as caught:
        make(RegistryCipher.from_text(generate_key(), source="other")).get("enc/accessToken")
    assert f"encrypted with key {cipher.primary_id}" in str(caught.value)
    assert "the-token-value" not in str(caught.value)
    with pytest.raises(RegistryError, match="no registry key is configured.*--registry-key-file"):
        make().get("enc/accessToken")


def test_a_sealed_value_copied_to_another_key_does_not_open(make: Callable[..., Registry]) -> None:
    cipher = RegistryCipher.from_text(generate_key(), source="test")
    reg = make(cipher)
    reg.put("enc/A/accessToken", "token-of-A", secret=True)
    sealed = raw(reg, "enc/A/accessToken")
    assert sealed is not None
    make().put("enc/B/accessToken", sealed)  # someone with write access moves A's token to B
    with pytest.raises(RegistryError, match="altered, or copied from another key"):
        reg.get("enc/B/accessToken")


def test_key_rotation_new_key_first_old_key_still_opens(make: Callable[..., Registry]) -> None:
    old, new = generate_key(), generate_key()
    make(RegistryCipher.from_text(old, source="t")).put("rot/accessToken", "tok-old", secret=True)
    rotated = make(RegistryCipher.from_text(f"{new}\n{old}\n", source="t"))
    assert rotated.get("rot/accessToken") == "tok-old"
    rotated.put("rot/accessToken", "tok-new", secret=True)
    assert make(RegistryCipher.from_text(new, source="t")).get("rot/accessToken") == "tok-new"


def test_plain_values_written_before_a_key_was_configured_still_read(make: Callable[..., Registry]) -> None:
    make().put("plain/accessToken", "tok-plain", secret=True)
    assert make(RegistryCipher.from_text(generate_key(), source="t")).get("plain/accessToken") == "tok-plain"


# -- N processes, one grant per expiry ------------------------------------------------------------

PROCESSES = 5
REG_PATH = "connectors/SalesforceBulk"


def _params(emulator: Any, registry_path: str = REG_PATH) -> dict[str, str]:
    creds = emulator.credentials
    return dict(
        apiUrl=emulator.base_url,
        apiVersion="62.0",
        accessToken="",
        refreshToken=creds["refresh_token"],
        clientId=creds["client_id"],
        clientSecret=creds["client_secret"],
        registryPath=registry_path,
        tokenEndpointHostname=emulator.base_url,
        timeout="20",
    )


def _worker(spec: str, key: str | None, params: dict[str, str], barrier: Any, results: Any) -> None:
    try:
        cipher = RegistryCipher.from_text(key, source="test") if key else None
        registry = open_registry(spec, cipher=cipher, environ={})
        conn = Connector.load().connection(registry=registry, **params)
        barrier.wait(20)  # everyone finds the stale token at the same moment
        statuses = [
            conn.invoke("createJob", operation="insert", object="Contact", contentType="CSV").status
            for _ in range(2)
        ]
        results.put((conn.auth.refresh_count, statuses, registry.get(f"{REG_PATH}/accessToken"), None))
        conn.close()
    except Exception as exc:  # report, never hang the parent
        results.put((None, [], None, f"{type(exc).__name__}: {exc}"))


@pytest.mark.slow
@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_processes_sharing_the_store_make_one_grant_per_expiry(
    spec: str, emulator: Any, access_token: str, encrypted: bool
) -> None:
    key = generate_key() if encrypted else None
    cipher = RegistryCipher.from_text(key, source="test") if key else None
    registry = open_registry(spec, cipher=cipher, environ={})
    params = _params(emulator)
    with Connector.load().connection(registry=registry, **params) as conn:
        conn.auth.store(access_token, stamp_ms=int(time.time() * 1000) - 10_000_000)  # long expired
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(spec, key, params, barrier, results)) for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(10)
    assert [r[3] for r in reports if r[3]] == []
    assert sum(r[0] for r in reports) == 1  # one grant for the one expiry, across all processes
    assert all(r[1] == [201, 201] for r in reports)
    final = registry.get(f"{REG_PATH}/accessToken")
    assert final and final != access_token
    assert {r[2] for r in reports} == {final}
    if encrypted:
        stored = raw(registry, f"{REG_PATH}/accessToken")
        assert stored is not None and stored.startswith(SEALED_PREFIX) and final not in stored
