"""The shared store: PostgreSQL (psycopg 3 with a connection pool), for several servers and outbox workers
on one database. Same interfaces and behaviour as ``command.store.sqlite``:

    from command.store import open_store
    store = open_store("postgresql://yzt@db.example/yzt")     # or YZT_DATABASE=postgresql://... in settings

Every invariant is the database's, none is in process memory: one ``Reported`` per incident and the alert
identifiers are unique constraints; the drill guard and append-only events/audit are triggers; a CAP identifier
is reserved by a primary key; every transaction that writes audit entries first locks the one ``audit_tip`` row,
so writers on any server chain one after another (and events get their seq in commit order, so a reader of
``events(since_seq=...)`` never skips one); deliveries are claimed with ``FOR UPDATE SKIP LOCKED`` and a lease.
The SQL of each part lives beside this module (``postgres_events``, ``postgres_queue``, ``postgres_accounts``,
``postgres_audit``); migrations come from ``command.store.schema``.
"""
from __future__ import annotations

import re
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from command.errors import StoreError, StoreUnavailableError
from command.store import schema
from command.store.facade import ComposedStore
from command.store.postgres_accounts import PostgresAccounts
from command.store.postgres_audit import PostgresAuditChain
from command.store.postgres_events import PostgresEventLog
from command.store.postgres_queue import PostgresDeliveryQueue
from command.store.postgres_security import PostgresSecurity

_MIGRATION_LOCK = 0x59_5A_54_01     # pg_advisory_xact_lock key: one migrator at a time ("YZT" 1)
IDLE_CHECK_S = 1.0                  # a pooled connection unused this long is checked before it is lent


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _psycopg() -> tuple[Any, Any, Any]:
    try:
        import psycopg
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool
    except ImportError:   # pragma: no cover - both are dependencies; a trimmed install may lack them
        raise StoreError("a postgresql:// database needs psycopg 3 and psycopg-pool: "
                         "pip install 'psycopg[binary]>=3.1' psycopg-pool") from None
    return psycopg, dict_row, ConnectionPool


def _binary_lists(conn: Any) -> None:
    """Python lists go to the server as binary arrays. psycopg's text array dumper escapes every quote and
    backslash of every element through a regex template (a Python call per match): the JSON payloads of one
    report's ~20 events made ~2,400 of them, ~0.7 ms of a worker's ~10 ms of CPU per report; the binary
    dumper packs the same in microseconds.
    Same values either way (text[], bigint[], double precision[], ``= ANY(%s)``, empty lists, NULLs)."""
    from psycopg.types.array import ListBinaryDumper
    conn.adapters.register_dumper(list, ListBinaryDumper)


class PostgresDatabase:
    """A connection pool over one PostgreSQL database; migrates it when opened."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8, timeout_s: float = 30.0,
                 audit_key: bytes | None = None, anchor: Any = None, target: int = schema.SCHEMA_VERSION) -> None:
        """``target``: the schema version to bring the database to (tests build databases of older versions)."""
        psycopg, dict_row, ConnectionPool = _psycopg()
        self.url, self.name = url, redact(url)
        from command.security.audit import Anchor, load_key, plugin_anchor_hook
        # the audit chain's HMAC key and tip anchor live OUTSIDE the database; without the settings' ones
        # (command.store.open_store passes them), a key and an anchor per database under ~/.config/yzt
        import hashlib
        from pathlib import Path
        here = Path.home() / ".config" / "yzt" / hashlib.sha256(self.name.encode()).hexdigest()[:16]
        self.audit_key = audit_key if audit_key is not None else load_key(here / "audit_key")
        self.anchor = anchor if anchor is not None else Anchor(here / "audit-anchor", hook=plugin_anchor_hook(),
                                                               database=self.name)
        self.errors = psycopg
        self._returned: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.pool = ConnectionPool(url, min_size=min_size, max_size=max_size, timeout=timeout_s, open=False,
                                   kwargs={"row_factory": dict_row}, name="yzt-store",
                                   check=self._check_if_idle, reset=self._stamp, configure=_binary_lists,
                                   reconnect_timeout=10.0)  # after an outage, new connections at once
        try:
            self.pool.open(wait=True, timeout=timeout_s)
        except Exception as e:   # PoolTimeout, OperationalError: say which database, never the password
            self.pool.close()
            raise StoreError(f"database {self.name}: cannot connect ({_first_line(e)})") from None
        try:
            self._migrate(target)
        except BaseException:
            self.pool.close()
            raise

    def _stamp(self, conn: Any) -> None:
        self._returned[conn] = time.monotonic()

    def _check_if_idle(self, conn: Any) -> None:
        """A connection idle for a while is checked before it is lent (a restarted server's dead socket is
        replaced, not handed to a request); one in steady use is not (a round trip each time costs the outbox
        a quarter of its time). One that broke in use is discarded by the pool when it comes back."""
        if time.monotonic() - self._returned.get(conn, 0.0) > IDLE_CHECK_S:
            type(self.pool).check_connection(conn)

    @contextmanager
    def tx(self, *, fsync: bool = True) -> Iterator[Any]:
        """One transaction on a pooled connection: committed when the block ends, rolled back when it raises.
        ``fsync=False``: the commit does not wait for the WAL flush (synchronous_commit off for this
        transaction), only for writes whose loss repeats work, never loses it."""
        try:
            with self.pool.connection() as conn:
                if not fsync:
                    conn.execute("SET LOCAL synchronous_commit = off")
                yield conn
        except self.errors.OperationalError as e:     # a lost server or a pool that waited too long
            raise StoreUnavailableError(f"database {self.name}: unavailable ({_first_line(e)})") from None

    @contextmanager
    def _one_statement(self) -> Iterator[Any]:
        """A pooled connection in autocommit for ONE statement: a statement is atomic on its own, and this way
        it is one round trip, not three (psycopg otherwise sends BEGIN before it and COMMIT after; under 200
        officers the BEGIN/COMMIT of each read were a quarter of a web worker's samples). The connection goes
        back to the pool as it came (autocommit off)."""
        try:
            with self.pool.connection() as conn:
                conn.autocommit = True
                try:
                    yield conn
                finally:
                    if not conn.closed:
                        conn.autocommit = False
        except self.errors.OperationalError as e:
            raise StoreUnavailableError(f"database {self.name}: unavailable ({_first_line(e)})") from None

    def rows(self, sql: str, args: Any = ()) -> list[dict[str, Any]]:
        """The rows of one statement (a read, or one self-contained write such as INSERT ... RETURNING)."""
        with self._one_statement() as conn:
            return conn.execute(sql, args).fetchall()

    def row(self, sql: str, args: Any = ()) -> dict[str, Any] | None:
        with self._one_statement() as conn:
            return conn.execute(sql, args).fetchone()

    def _migrate(self, target: int) -> None:
        with self.tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(schema.PG_VERSION_TABLE)
            current = conn.execute("SELECT max(version) AS v FROM schema_version").fetchone()["v"]
            if current is not None and current > schema.SCHEMA_VERSION:
                raise StoreError(f"database {self.name}: schema version {current}, this program needs "
                                 f"{schema.SCHEMA_VERSION}")
            migrate(conn, current, target, key=self.audit_key)

    def close(self) -> None:
        self.pool.close()


def migrate(conn: Any, current: int | None, target: int, *, key: bytes | None = None) -> None:
    """Apply the PostgreSQL migrations above ``current`` up to ``target`` on ``conn`` (inside its
    transaction) and record ``target``. Tests use ``target`` to build a database of an older version."""
    for migration in schema.pending(schema.PG_MIGRATIONS, current):
        if migration.version > target:
            break
        for statement in migration.statements:
            if statement == schema.PG_SEAL:
                from command.store.postgres_audit import seal
                seal(key or b"", conn)
                continue
            if statement == schema.SUMMARY_BUILD:
                from command.store import summary_sql
                summary_sql.rebuild(conn, "%s", key, sqlite=False)
                continue
            conn.execute(statement)
    if current is None:
        conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (target,))
    elif current < target:
        conn.execute("UPDATE schema_version SET version = %s", (target,))


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


class PostgresStore(ComposedStore):
    """The PostgreSQL store; see the module docstring. ``url``: a libpq connection URL."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8, audit_key: bytes | None = None,
                 anchor: Any = None) -> None:
        self.db = PostgresDatabase(url, min_size=min_size, max_size=max_size, audit_key=audit_key, anchor=anchor)
        self.audit_key, self.anchor = self.db.audit_key, self.db.anchor
        self.url = url
        self.audit_chain = PostgresAuditChain(self.db)
        self.event_log = PostgresEventLog(self.db)
        self.queue = PostgresDeliveryQueue(self.db)
        self.accounts = PostgresAccounts(self.db)
        self.security = PostgresSecurity(self.db)

    def close(self) -> None:
        self.db.close()
