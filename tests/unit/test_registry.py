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
    [
        ("conf:a/b", "config/a/b"),
        ("gov:a/b", "governance/a/b"),
        ("local:a", "local/a"),
        ("gov:/x/y", "governance/x/y"),
        ("conf:/z", "config/z"),
    ],
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
    [
        "../outside",
        "a/../../outside",
        "/etc/passwd",
        "gov:../x",
        "conf://etc/passwd",
        "a/./b",
        "a\x00b",
        "",
        "   ",
        "a\\..\\b",
        "C:/x",
        "gov:",
    ],
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


# --- hardening (issue 11 point 6) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("a//b", "a/b"),
        ("a/b/", "a/b"),
        ("conf:x", "config/x"),
        ("conf:/x", "config//x"),
        ("gov:k", "governance/k"),
    ],
)
def test_aliased_keys_are_one_file_and_one_lock(reg, one, other):
    from sfbulk.registry import canonical_key

    assert canonical_key(one) == canonical_key(other)
    reg.put(one, "v1")
    assert reg.get(other) == "v1"
    assert reg.path(one) == reg.path(other)
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with reg.lock(one):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    try:
        with pytest.raises(RegistryError, match="not acquired"), reg.lock(other, timeout=0.2):
            pass
    finally:
        release.set()
        thread.join()


def test_a_symlink_swapped_in_after_first_use_is_refused_for_writes_and_reads(reg, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "token").write_text("outside-secret")
    reg.put("connectors/X/token", "inside")
    assert reg.get("connectors/X/token") == "inside"  # first use: everything checked and fine
    real = reg.root / "connectors" / "X"
    os.rename(real, tmp_path / "moved")
    os.symlink(outside, real)  # a folder of the key becomes a link to somewhere else
    with pytest.raises(RegistryError, match="symbolic link"):
        reg.put("connectors/X/token", "leaked?")
    with pytest.raises(RegistryError, match="symbolic link"):
        reg.get("connectors/X/token")
    assert (outside / "token").read_text() == "outside-secret"
    os.unlink(real)
    os.rename(tmp_path / "moved", real)
    os.symlink(outside / "token", real / "link")  # the resource itself a link
    with pytest.raises(RegistryError, match="symbolic link"):
        reg.get("connectors/X/link")
    reg.put("connectors/X/link", "replaced")  # rename replaces the link itself, never writes through it
    assert not os.path.islink(real / "link") and (real / "link").read_text() == "replaced"
    assert (outside / "token").read_text() == "outside-secret"


def test_temporary_files_of_a_killed_writer_are_removed_at_start_up_and_on_the_next_write(tmp_path):
    import signal

    root = tmp_path / "registry"
    reg = FileRegistry(root)
    reg.put("connectors/X/accessToken", "old", secret=True)
    folder = root / "connectors" / "X"
    for _ in range(2):
        pid = os.fork()
        if pid == 0:  # a writer killed between writing its temporary file and renaming it
            name = reg._temp_name("accessToken")
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, b"a full token")
            os.kill(os.getpid(), signal.SIGKILL)
        os.waitpid(pid, 0)
        assert len([n for n in os.listdir(folder) if n.startswith(".sfbulk-tmp.")]) == 1
        if _ == 0:
            FileRegistry(root)  # start-up
        else:
            reg.put("connectors/X/time", "1")  # the next write to that folder
        assert sorted(os.listdir(folder)) == ["accessToken"] + (["time"] if _ else [])
    # a live writer's temporary file (this process) is left alone
    mine = folder / reg._temp_name("accessToken")
    mine.write_text("in flight")
    FileRegistry(root)
    reg.put("connectors/X/time", "2")
    assert mine.exists()


def test_reserved_names_are_not_keys(reg):
    for key in (".sfbulk-identity-key", "a/.sfbulk-tmp.x.1.2.3", ".locks/x"):
        with pytest.raises(RegistryError, match="reserved"):
            reg.get(key)


def test_identity_key_is_created_once_owner_only_and_shared(tmp_path):
    root = tmp_path / "registry"
    assert FileRegistry(root).identity_key() is None  # reading creates nothing
    assert not root.exists()
    keys: list[bytes | None] = []
    threads = [
        threading.Thread(target=lambda: keys.append(FileRegistry(root).identity_key(create=True)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and len(keys[0] or b"") == 32
    key_file = root / ".sfbulk-identity-key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert [n for n in os.listdir(root) if n.startswith(".sfbulk-tmp.")] == []
    os.chmod(key_file, 0o644)
    with pytest.raises(RegistryError, match="chmod 600"):
        FileRegistry(root).identity_key()


def test_new_folders_are_private(reg):
    reg.put("connectors/Y/accessToken", "t", secret=True)
    assert stat.S_IMODE(os.stat(reg.root / "connectors" / "Y").st_mode) == 0o700


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("a/" * 1900 + "b", "characters long"),
        ("a/" * 80 + "b", "path segments"),
        ("x" * 300, "longer than 255 bytes"),
    ],
)
def test_oversized_keys_are_refused_with_one_short_message(reg, key, message):
    with pytest.raises(RegistryError, match=message) as info:
        reg.put(key, "v")
    assert len(str(info.value)) < 200
    assert not reg.root.exists()


@pytest.mark.slow
def test_lock_files_are_bounded_whatever_keys_callers_name(tmp_path) -> None:
    """Callers choose registryPath: ever new keys share LOCK_STRIPES lock files, never one each."""
    from sfbulk.registry import LOCK_STRIPES

    reg = FileRegistry(tmp_path / "reg")
    for i in range(LOCK_STRIPES + 500):
        with reg.lock(f"bogus/{i}/accessToken", timeout=1):
            pass
    files = list((tmp_path / "reg" / ".locks").iterdir())
    assert LOCK_STRIPES // 2 < len(files) <= LOCK_STRIPES  # spread over the stripes, never more
