"""FileRegistry: key mapping, atomic writes, modes, confinement, locks."""

from __future__ import annotations

import os
import stat
import threading
import time

import pytest

from sfbulk.errors import RegistryError
from sfbulk.registry import FileRegistry, MemoryRegistry


@pytest.fixture()
def reg(tmp_path):
    return FileRegistry(tmp_path / "registry")


def test_plain_key_maps_to_file_under_root(reg):
    reg.put("connectors/SalesforceBulk/time", "1700000000000")
    assert (reg.root / "connectors/SalesforceBulk/time").read_text() == "1700000000000"
    assert reg.get("connectors/SalesforceBulk/time") == "1700000000000"


@pytest.mark.parametrize(
    ("key", "relative"),
    [("conf:a/b", "config/a/b"), ("gov:a/b", "governance/a/b"), ("local:a", "local/a"),
     ("gov:/x/y", "governance/x/y"), ("conf:/z", "config/z")],
)
def test_prefixes_follow_the_mi_layout(reg, key, relative):
    reg.put(key, "v")
    assert (reg.root / relative).read_text() == "v"
    assert reg.get(key) == "v"


def test_missing_resource_is_none_and_delete_is_idempotent(reg):
    assert reg.get("nothing/here") is None
    reg.put("a/b", "1")
    reg.delete("a/b")
    reg.delete("a/b")
    assert reg.get("a/b") is None


def test_empty_resource_reads_as_empty_string(reg):
    reg.put("k", "")
    assert reg.get("k") == ""


def test_secret_resources_are_owner_only_and_others_are_readable(reg):
    reg.put("connectors/X/accessToken", "tok-123456", secret=True)
    reg.put("connectors/X/time", "1")
    assert stat.S_IMODE(os.stat(reg.path("connectors/X/accessToken")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(reg.path("connectors/X/time")).st_mode) == 0o644


def test_overwrite_is_atomic_and_leaves_no_temp_files(reg):
    for i in range(20):
        reg.put("a/token", f"value-{i}", secret=True)
    assert reg.get("a/token") == "value-19"
    assert sorted(os.listdir(reg.root / "a")) == ["token"]


def test_concurrent_readers_never_see_a_partial_value(reg):
    values = ["x" * 50_000, "y" * 50_000]
    reg.put("big", values[0])
    stop = threading.Event()
    seen: set[str] = set()

    def reader():
        while not stop.is_set():
            seen.add(reg.get("big"))

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(40):
        reg.put("big", values[i % 2])
    stop.set()
    thread.join()
    assert seen <= set(values)


@pytest.mark.parametrize(
    "key",
    ["../outside", "a/../../outside", "/etc/passwd", "gov:../x", "conf://etc/passwd", "a/./b",
     "a\x00b", "", "   ", "a\\..\\b", "C:/x", "gov:"],
)
def test_keys_outside_the_root_are_rejected(reg, key):
    with pytest.raises(RegistryError) as info:
        reg.put(key, "v")
    assert str(info.value)  # a message a user can act on
    with pytest.raises(RegistryError):
        reg.get(key)
    assert not (reg.root.parent / "outside").exists()


def test_dotdot_message_says_outside(reg):
    with pytest.raises(RegistryError, match="outside the registry"):
        reg.get("a/../../b")
    with pytest.raises(RegistryError, match="absolute"):
        reg.get("/tmp/x")
    with pytest.raises(RegistryError, match="NUL"):
        reg.get("a\x00")


def test_symlink_escaping_the_root_is_rejected(reg, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    reg.root.mkdir(parents=True)
    os.symlink(outside, reg.root / "link")
    with pytest.raises(RegistryError, match="outside"):
        reg.put("link/token", "v")
    assert not (outside / "token").exists()


def test_collection_is_not_a_resource(reg):
    reg.put("dir/file", "v")
    with pytest.raises(RegistryError, match="collection"):
        reg.get("dir")


def test_lock_excludes_other_threads(reg):
    events: list[str] = []

    def worker(name: str) -> None:
        with reg.lock("connectors/X/accessToken"):
            events.append(f"{name}-in")
            time.sleep(0.05)
            events.append(f"{name}-out")

    threads = [threading.Thread(target=worker, args=(str(i),)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # each "in" is immediately followed by its own "out": no interleaving
    for i in range(0, len(events), 2):
        assert events[i].replace("-in", "") == events[i + 1].replace("-out", "")
    assert not (reg.root / "connectors/X/accessToken").exists()  # the lock file lives elsewhere


def test_lock_timeout_raises_registry_error(reg):
    acquired = threading.Event()
    release = threading.Event()

    def holder():
        with reg.lock("k"):
            acquired.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    acquired.wait(5)
    try:
        with pytest.raises(RegistryError, match="not acquired"), reg.lock("k", timeout=0.1):
            pass
    finally:
        release.set()
        thread.join()


def test_lock_rejects_bad_keys(reg):
    with pytest.raises(RegistryError), reg.lock("../x"):
        pass


def test_memory_registry_same_interface():
    mem = MemoryRegistry()
    mem.put("gov:a", "1", secret=True)
    assert mem.get("gov:/a") == "1"
    assert mem.get("a") is None
    with mem.lock("gov:a"):
        mem.delete("gov:a")
    assert mem.get("gov:a") is None
    with pytest.raises(RegistryError):
        mem.put("../a", "x")
