"""The registry in one PostgreSQL table, shared by every sfbulk process on every host.

``--registry postgresql://user@host:port/database`` (``?table=name`` picks another table than
``sfbulk_registry``; every other query parameter, and the usual PG* variables and ~/.pgpass, are
libpq's). Same contract as the file store:

* **Keys**: validated and folded by ``sfbulk.registry.keys`` (one canonical key = one row = one lock);
  a key is a resource or a collection (``a`` and ``a/b`` cannot both be resources), as with folders.
* **Atomic writes**: each put is one ``INSERT ... ON CONFLICT DO UPDATE`` statement; a reader sees the
  old value or the new one. ``version`` (a sequence) changes on every write, so the token check before
  every call re-reads nothing unchanged.
* **The lock** around "read, refresh if stale, write" is a session-level advisory lock
  (``pg_advisory_lock`` on a 64-bit hash of the table and canonical key), waited for with
  ``lock_timeout``, on a connection of its own. PostgreSQL frees it when that connection ends, so a
  holder that crashed (SIGKILL: its socket closes) never blocks the others; a host that vanished
  without closing is detected by TCP keepalives (about 25 s). Within one process, threads queue on a
  threading lock first, so a process holds one lock connection per key however many threads wait.
* **Secrets** (tokens, the identity key) are encrypted with the configured registry key; rows are
  otherwise readable by whoever can read the table: grant it to sfbulk's role only (docs/registry.md).

Connections come from a small pool, opened on first use and re-opened after the server restarts.
A process forked after using the registry (``serve --workers``) starts with no connection of its
parent's (psycopg never closes a parent's connection from a child).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import re
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sfbulk.errors import RegistryError
from sfbulk.registry.base import Registry
from sfbulk.registry.crypto import RegistryCipher
from sfbulk.registry.keys import IDENTITY_KEY_BYTES, IDENTITY_KEY_FILE, canonical_key

log = logging.getLogger("sfbulk.registry")

DEFAULT_TABLE = "sfbulk_registry"
#: Connections for reads and writes per process (locks have their own, one per key being locked).
DEFAULT_POOL_SIZE = 8
#: Seconds to connect, unless the URL says otherwise (connect_timeout=...).
DEFAULT_CONNECT_TIMEOUT = 10
#: A read or write taking longer than this is cancelled (a stuck server must not hang a request).
STATEMENT_TIMEOUT_MS = 30_000
#: Server-side TCP keepalive of lock sessions (idle s, interval s, count): the locks of a host that
#: vanished without closing its connections are freed after about idle + interval x count seconds.
LOCK_KEEPALIVE = (10, 5, 3)
#: version() reuses the versions of a token entry read this long ago by the same thread (one check).
VERSION_SNAPSHOT_SECONDS = 0.005
#: The resources of a token entry (sfbulk.connector.auth, the WSO2 layout): versions read together.
TOKEN_ENTRY_NAMES = ("identity", "accessToken", "time", "instanceUrl", "apiUrl", "refreshToken")
#: Lower case only: PostgreSQL folds unquoted names, and the table's sequence is named by a string.
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,54}(\.[a-z_][a-z0-9_]{0,54})?$")
_T = TypeVar("_T")


def mask_url(url: str) -> str:
    """``url`` with its password (and a ``password=`` query parameter) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":***"
            netloc = f"{userinfo}@{hostport}"
        query = [(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(parts.query, True)]
        return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="/*"), ""))
    except ValueError:
        return url.split("://", 1)[0] + "://***"


def _split_url(url: str, option: str) -> tuple[str, str]:
    """(libpq URL without sfbulk's own parameters, table name)."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError as exc:
        raise RegistryError(f"{option} {mask_url(url)} is not a valid URL: {exc}") from None
    table = DEFAULT_TABLE
    rest = []
    for name, value in query:
        if name == "table":
            table = value
        else:
            rest.append((name, value))
    if not _TABLE_NAME.match(table):
        raise RegistryError(
            f"{option} {mask_url(url)}: table={table!r} is not a table name "
            "(lower-case letters, digits and _, optionally schema.table)"
        )
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment)), table


def _import_psycopg(option: str) -> Any:
    try:
        import psycopg
    except ImportError:
        raise RegistryError(
            f"{option} postgresql://... needs psycopg 3, which is not installed: "
            "pip install 'sfbulk[postgresql]' (or pip install 'psycopg[binary]')"
        ) from None
    return psycopg


def _reason(exc: BaseException) -> str:
    """The first line of a driver error (the rest may quote a statement; no value is ever in it)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class _KeyLock:
    """One advisory lock in this process: re-entrant per thread, exclusive between threads, and
    between processes and hosts through the advisory lock on ``conn`` while ``depth`` > 0.

    Shared by every PostgresRegistry of the process on the same database and table (as the file
    store's lock files are), so two registry objects in one thread never wait for each other.
    """

    def __init__(self) -> None:
        self.thread_lock = threading.RLock()
        self.depth = 0
        self.conn: Any = None
        self.owner: PostgresRegistry | None = None
        self.users = 0


#: (database identity, table, lock id) → the process's lock; emptied in a forked child.
_PROCESS_LOCKS: dict[tuple[object, ...], _KeyLock] = {}
_PROCESS_GUARD = threading.Lock()


def _forget_locks_after_fork() -> None:
    """In a forked child: no lock is held (its parent's sessions are not its own), and no guard is
    left locked by a parent thread that does not exist here."""
    global _PROCESS_GUARD
    _PROCESS_LOCKS.clear()
    _PROCESS_GUARD = threading.Lock()
    for registry in list(_LIVE):
        registry._guard = threading.Lock()
        registry._reset_in_child()


_LIVE: weakref.WeakSet[PostgresRegistry] = weakref.WeakSet()


class PostgresRegistry(Registry):
    """Resources as rows of one table: (key, value, secret, version, updated_at)."""

    def __init__(
        self,
        url: str,
        *,
        table: str | None = None,
        cipher: RegistryCipher | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        option: str = "--registry",
    ) -> None:
        self._pg = _import_psycopg(option)
        from psycopg import sql

        self.url = mask_url(url)
        self.option = option
        libpq_url, url_table = _split_url(url, option)
        self.table = table or url_table
        if not _TABLE_NAME.match(self.table):
            raise RegistryError(f"{self.table!r} is not a table name (lower-case letters, digits and _)")
        try:
            self._params: dict[str, Any] = dict(self._pg.conninfo.conninfo_to_dict(libpq_url))
        except self._pg.Error as exc:
            raise RegistryError(f"{option} {self.url} is not a PostgreSQL URL: {_reason(exc)}") from None
        self._params.setdefault("connect_timeout", str(DEFAULT_CONNECT_TIMEOUT))
        self._params.setdefault("application_name", "sfbulk")
        self._params.setdefault("keepalives", "1")
        self._params.setdefault("keepalives_idle", "30")
        self.cipher = cipher
        self.pool_size = pool_size
        ident = sql.Identifier(*self.table.split("."))
        seq = sql.Identifier(*(self.table + "_version").split("."))
        self._sql = {
            "create_seq": sql.SQL("CREATE SEQUENCE IF NOT EXISTS {}").format(seq),
            "create": sql.SQL(
                "CREATE TABLE IF NOT EXISTS {t} ("
                ' key text COLLATE "C" PRIMARY KEY,'
                " value text NOT NULL,"
                " secret boolean NOT NULL DEFAULT false,"
                " version bigint NOT NULL DEFAULT nextval({s}),"
                " updated_at timestamptz NOT NULL DEFAULT now())"
            ).format(t=ident, s=sql.Literal(self.table + "_version")),
            "get": sql.SQL("SELECT value FROM {} WHERE key = %s").format(ident),
            "versions": sql.SQL("SELECT key, version FROM {} WHERE key = ANY(%s)").format(ident),
            "conflict": sql.SQL(
                "SELECT key FROM {} WHERE key = ANY(%s) OR (key > %s AND key < %s) LIMIT 1"
            ).format(ident),
            "put": sql.SQL(
                "INSERT INTO {t} (key, value, secret) SELECT %(key)s, %(value)s, %(secret)s"
                " WHERE NOT EXISTS (SELECT 1 FROM {t} WHERE key = ANY(%(ancestors)s)"
                " OR (key > %(low)s AND key < %(high)s))"
                " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, secret = EXCLUDED.secret,"
                " version = nextval({s}), updated_at = now()"
            ).format(t=ident, s=sql.Literal(self.table + "_version")),
            "delete": sql.SQL("DELETE FROM {} WHERE key = %s").format(ident),
            "add_once": sql.SQL(
                "INSERT INTO {} (key, value, secret) VALUES (%s, %s, true) ON CONFLICT (key) DO NOTHING"
            ).format(ident),
        }
        self._pid = os.getpid()
        self._guard = threading.Lock()
        self._idle: list[Any] = []
        self._lock_idle: list[Any] = []
        self._slots = threading.BoundedSemaphore(pool_size)
        self._scope = tuple(self._params.get(k) for k in ("host", "hostaddr", "port", "dbname", "user"))
        self._identity_key: bytes | None = None
        self._local = threading.local()
        _LIVE.add(self)

    def __repr__(self) -> str:
        return f"PostgresRegistry({self.url!r}, table={self.table!r})"

    def describe(self) -> str:
        return f"PostgreSQL {self.url} table {self.table}" + (", secrets encrypted" if self.cipher else "")

    def location(self, key: str) -> str:
        return f"{self.url} table {self.table} key {canonical_key(key)}"

    # -- connections ----------------------------------------------------------------------------

    def _connect(self, *, for_lock: bool = False) -> Any:
        try:
            conn = self._pg.connect(autocommit=True, **self._params)
            if for_lock:
                idle, interval, count = LOCK_KEEPALIVE
                conn.execute("SET statement_timeout = 0")
                conn.execute(f"SET tcp_keepalives_idle = {idle}")
                conn.execute(f"SET tcp_keepalives_interval = {interval}")
                conn.execute(f"SET tcp_keepalives_count = {count}")
            else:
                conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
            return conn
        except self._pg.Error as exc:
            raise RegistryError(
                f"cannot connect to the PostgreSQL registry {self.url} ({self.option}): {_reason(exc)}"
            ) from None

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's connections (never use or close them)."""
        if os.getpid() != self._pid:
            with self._guard:
                if os.getpid() != self._pid:
                    self._reset_in_child()

    def _reset_in_child(self) -> None:
        self._pid = os.getpid()
        self._idle, self._lock_idle = [], []
        self._slots = threading.BoundedSemaphore(self.pool_size)

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        self._after_fork()
        if not self._slots.acquire(timeout=STATEMENT_TIMEOUT_MS / 1000):
            raise RegistryError(
                f"all {self.pool_size} connections to the PostgreSQL registry {self.url} stayed busy "
                f"for {STATEMENT_TIMEOUT_MS // 1000} s"
            )
        slots = self._slots
        conn = None
        try:
            with self._guard:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self._connect()
            yield conn
        finally:
            if conn is not None:
                if conn.closed or conn.broken or os.getpid() != self._pid:
                    with contextlib.suppress(Exception):
                        conn.close()
                else:
                    with self._guard:
                        self._idle.append(conn)
            slots.release()

    def _run(self, what: str, key: str, work: Callable[[Any], _T]) -> _T:
        """``work(connection)``, retried once on a fresh connection if the pooled one was dead."""
        for attempt in (1, 2):
            try:
                with self._connection() as conn:
                    try:
                        return work(conn)
                    except self._pg.OperationalError:
                        if attempt == 1 and conn.broken:
                            raise _Retry from None
                        raise
            except _Retry:
                continue
            except self._pg.Error as exc:
                raise RegistryError(
                    f"cannot {what} registry resource {key!r} in {self.url}: {_reason(exc)}"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def setup(self) -> None:
        """Connect and create the table if it is missing (serialised: several hosts may start at once)."""

        def create(conn: Any) -> None:
            found = conn.execute("SELECT to_regclass(%s)", (self.table,)).fetchone()
            if found and found[0] is not None:
                return
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_id(".sfbulk-setup"),))
                    conn.execute(self._sql["create_seq"])
                    conn.execute(self._sql["create"])
            except self._pg.errors.InsufficientPrivilege as exc:
                raise RegistryError(
                    f"cannot create the registry table {self.table} in {self.url} ({self.option}): "
                    f"{_reason(exc)}; grant the role CREATE on the schema for the first start, or "
                    "create the table as docs/registry.md shows"
                ) from None

        self._run("create the table of", self.table, create)

    def close(self) -> None:
        with self._guard:
            idle, self._idle = self._idle, []
            lock_idle, self._lock_idle = self._lock_idle, []
        if os.getpid() == self._pid:
            for conn in idle + lock_idle:
                with contextlib.suppress(Exception):
                    conn.close()

    # -- resources ------------------------------------------------------------------------------

    def _shape_error(self, conn: Any, key: str, canonical: str) -> RegistryError | None:
        """Why ``key`` cannot be a resource, as with folders: an ancestor is a resource, or it has children."""
        segments = canonical.split("/")
        ancestors = ["/".join(segments[:i]) for i in range(1, len(segments))]
        row = conn.execute(self._sql["conflict"], (ancestors, canonical + "/", canonical + "0")).fetchone()
        if row is None:
            return None
        if str(row[0]) in ancestors:
            name = str(row[0]).rsplit("/", 1)[-1]
            return RegistryError(
                f"registry key {key!r} is illegal: {name!r} in its path is a resource, not a folder"
            )
        return RegistryError(f"registry key {key!r} is a collection (directory), not a resource")

    def get(self, key: str) -> str | None:
        canonical = canonical_key(key)

        def read(conn: Any) -> str | None:
            row = conn.execute(self._sql["get"], (canonical,)).fetchone()
            if row is not None:
                return str(row[0])
            error = self._shape_error(conn, key, canonical)  # only on a miss: the hot path is one query
            if error is not None:
                raise error
            return None

        stored = self._run("read", key, read)
        return None if stored is None else self._unseal(key, canonical, stored)

    def version(self, key: str) -> object | None:
        """The row's version. For a resource of a token entry (``<registryPath>/accessToken``,
        ``/time``, ...), one query reads the versions of all of that entry's resources, and this
        thread's next calls for the entry within VERSION_SNAPSHOT_SECONDS use them: the token check
        before every call asks for four of them in a row (one round trip instead of four). Only a
        change signal: decisions taken under the lock re-read the values themselves."""
        try:
            canonical = canonical_key(key)
        except RegistryError:
            return None
        folder, _, name = canonical.rpartition("/")
        batch = (
            [f"{folder}/{n}" for n in TOKEN_ENTRY_NAMES]
            if folder and name in TOKEN_ENTRY_NAMES
            else [canonical]
        )
        now = time.monotonic()
        snapshot = getattr(self._local, "versions", None)
        if snapshot is None or canonical not in snapshot[1] or now - snapshot[0] > VERSION_SNAPSHOT_SECONDS:
            try:
                rows = self._run(
                    "read", key, lambda conn: conn.execute(self._sql["versions"], (batch,)).fetchall()
                )
            except RegistryError:
                return None
            found = {k: None for k in batch} | {str(k): int(v) for k, v in rows}
            snapshot = (now, found)
            self._local.versions = snapshot
        version = snapshot[1].get(canonical)
        return ("missing",) if version is None else version

    def put(self, key: str, value: str, *, secret: bool = False) -> None:
        canonical = canonical_key(key)
        segments = canonical.split("/")
        ancestors = ["/".join(segments[:i]) for i in range(1, len(segments))]
        text = self._seal(canonical, value if isinstance(value, str) else str(value), secret)
        args = {
            "key": canonical,
            "value": text,
            "secret": secret,
            "ancestors": ancestors,
            "low": canonical + "/",
            "high": canonical + "0",
        }

        def write(conn: Any) -> None:
            if conn.execute(self._sql["put"], args).rowcount == 1:
                return
            raise self._shape_error(conn, key, canonical) or RegistryError(
                f"registry resource {key!r} was not written (a concurrent writer changed its folder)"
            )

        self._local.versions = None  # this thread's next version() sees its own write
        self._run("write", key, write)
        log.debug("registry put %s%s", key, " (secret)" if secret else "")

    def delete(self, key: str) -> None:
        canonical = canonical_key(key)
        self._local.versions = None
        self._run("delete", key, lambda conn: conn.execute(self._sql["delete"], (canonical,)))

    # -- the identity key ------------------------------------------------------------------------

    def identity_key(self, *, create: bool = False) -> bytes | None:
        """A row of its own (a reserved key no caller can name), created once: concurrent creators
        insert with ON CONFLICT DO NOTHING and then all read the one that won."""
        if self._identity_key is not None:
            return self._identity_key
        name = IDENTITY_KEY_FILE

        def fetch(conn: Any) -> str | None:
            if create:
                fresh = base64.b64encode(secrets.token_bytes(IDENTITY_KEY_BYTES)).decode("ascii")
                conn.execute(self._sql["add_once"], (name, self._seal(name, fresh, True)))
            row = conn.execute(self._sql["get"], (name,)).fetchone()
            return None if row is None else str(row[0])

        stored = self._run("read", name, fetch)
        if stored is None:
            return None
        try:
            key = base64.b64decode(self._unseal(name, name, stored), validate=True)
        except ValueError:
            key = b""
        if len(key) != IDENTITY_KEY_BYTES:
            raise RegistryError(
                f"the registry identity key (row {name!r} of {self.table}) is damaged; delete that row: "
                "cached tokens are then refreshed once"
            )
        self._identity_key = key
        return key

    # -- locks ------------------------------------------------------------------------------------

    def _lock_id(self, canonical: str) -> int:
        digest = hashlib.sha256(f"sfbulk\x00{self.table}\x00{canonical}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    def _timeout_error(self, key: str, timeout: float) -> RegistryError:
        return RegistryError(
            f"registry lock for {key!r} not acquired within {timeout:g} s; another process or host "
            f"holds it (PostgreSQL registry {self.url})"
        )

    @contextlib.contextmanager
    def lock(self, key: str, timeout: float = 30) -> Iterator[None]:
        lock_id = self._lock_id(canonical_key(key))
        self._after_fork()
        started = time.monotonic()
        scope = (*self._scope, self.table, lock_id)
        with _PROCESS_GUARD:
            held = _PROCESS_LOCKS.get(scope)
            if held is None:
                held = _PROCESS_LOCKS[scope] = _KeyLock()
            held.users += 1
        try:
            if not held.thread_lock.acquire(timeout=max(timeout, 0.0)):
                raise self._timeout_error(key, timeout)
            try:
                if held.depth == 0:
                    remaining = timeout - (time.monotonic() - started) if timeout > 0 else 0.0
                    held.conn = self._advisory_lock(lock_id, key, timeout, max(remaining, 0.001))
                    held.owner = self
                held.depth += 1
            except BaseException:
                held.thread_lock.release()
                raise
            try:
                yield
            finally:
                held.depth -= 1
                try:
                    if held.depth == 0:
                        conn, held.conn = held.conn, None
                        owner, held.owner = held.owner or self, None
                        owner._advisory_unlock(conn, lock_id, key)
                finally:
                    held.thread_lock.release()
        finally:
            with _PROCESS_GUARD:
                held.users -= 1
                if held.users == 0 and _PROCESS_LOCKS.get(scope) is held:
                    del _PROCESS_LOCKS[scope]

    def _advisory_lock(self, lock_id: int, key: str, timeout: float, remaining: float) -> Any:
        with self._guard:
            conn = self._lock_idle.pop() if self._lock_idle else None
        if conn is None or conn.closed or conn.broken:
            conn = self._connect(for_lock=True)
        try:
            if timeout <= 0:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_id,)).fetchone()
                acquired = bool(row and row[0])
            else:
                wait_ms = max(int(min(remaining, 2_000_000.0) * 1000), 1)  # within lock_timeout's range
                conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{wait_ms}ms",))
                try:
                    conn.execute("SELECT pg_advisory_lock(%s)", (lock_id,))
                    acquired = True
                except self._pg.errors.LockNotAvailable:
                    acquired = False
        except self._pg.Error as exc:
            with contextlib.suppress(Exception):
                conn.close()
            raise RegistryError(
                f"cannot take the registry lock for {key!r} in {self.url}: {_reason(exc)}"
            ) from None
        if not acquired:
            self._give_back_lock_conn(conn)
            raise self._timeout_error(key, timeout)
        return conn

    def _advisory_unlock(self, conn: Any, lock_id: int, key: str) -> None:
        try:
            row = conn.execute("SELECT pg_advisory_unlock(%s)", (lock_id,)).fetchone()
            released = bool(row and row[0])
        except self._pg.Error:
            released = False
            with contextlib.suppress(Exception):
                conn.close()
        if not released:
            log.warning(
                "registry lock for %r was lost while held: the connection to %s dropped (another "
                "host may have refreshed at the same time)",
                key,
                self.url,
            )
        self._give_back_lock_conn(conn)

    def _give_back_lock_conn(self, conn: Any) -> None:
        if conn.closed or conn.broken or os.getpid() != self._pid:
            return
        with self._guard:
            if len(self._lock_idle) < self.pool_size:
                self._lock_idle.append(conn)
                return
        with contextlib.suppress(Exception):
            conn.close()


class _Retry(Exception):
    """The pooled connection was dead: run the work once more on a new one."""


def _close_before_fork() -> None:
    """Before a fork: close idle connections, so a child never inherits a session it could confuse."""
    for registry in list(_LIVE):
        with contextlib.suppress(Exception):
            registry.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_close_before_fork, after_in_child=_forget_locks_after_fork)


__all__ = ["DEFAULT_TABLE", "PostgresRegistry", "mask_url"]
