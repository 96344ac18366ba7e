"""The embedded store: one SQLite file (stdlib ``sqlite3``) holding the event log, the alert and delivery
queue, accounts and the audit chain.

    from command.store.sqlite import Store
    store = Store(path)                                # or command.store.open_store(settings)
    seq = store.append_event("GD-1", "reported", {"type": "fire"}, at="2024-05-01T08:00:00+08:00", actor="张三")
    for ev in store.events("GD-1", since_seq=0): ...   # StoredEvent(seq, incident_id, kind, at, payload, actor)
    store.close()

This module owns the connections and transactions (``SQLiteDatabase``: WAL mode, foreign keys, a busy
timeout, migrations from ``command.store.schema``) and the facade ``Store``; the SQL of each part lives beside
it (``sqlite_events``, ``sqlite_queue``, ``sqlite_accounts``, ``sqlite_audit``). Thread-safe: each thread gets
its own connection; writes that belong together run in one ``BEGIN IMMEDIATE`` transaction. Events cannot be
updated or deleted (there is no API for it and triggers refuse it), and the database itself refuses a delivery
of an Exercise alert to a live channel or of an Actual to an exercise one.
"""
from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from command.errors import StoreError
from command.store import schema
from command.store.facade import ComposedStore
from command.store.interfaces import StoredEvent
from command.store.sqlite_accounts import SQLiteAccounts
from command.store.sqlite_audit import SQLiteAuditChain
from command.store.sqlite_events import SQLiteEventLog
from command.store.sqlite_queue import _CLAIM_SQL, SQLiteDeliveryQueue
from command.store.sqlite_security import SQLiteSecurity

SCHEMA_VERSION = schema.SCHEMA_VERSION
__all__ = ["SCHEMA_VERSION", "SQLiteDatabase", "Store", "StoredEvent", "_CLAIM_SQL"]


class SQLiteDatabase:
    """Connections (one per thread) and transactions over one SQLite file; migrates it when opened."""

    def __init__(self, path: Path | str, *, durable: bool = True, audit_key: bytes | None = None,
                 anchor: Any = None, target: int = SCHEMA_VERSION) -> None:
        """``target``: the schema version to bring the file to (tests build files of older versions)."""
        from command.security.audit import Anchor, load_key, plugin_anchor_hook
        self.path = Path(path)
        self._sync = "FULL" if durable else "OFF"
        # the audit chain's HMAC key and the anchor of its tip live OUTSIDE this file (defaults: beside it)
        self.audit_key = audit_key if audit_key is not None else load_key(self.path.parent / "audit_key")
        self.anchor = anchor if anchor is not None else Anchor(
            self.path.with_name(self.path.name + ".audit-anchor"), hook=plugin_anchor_hook(), database=str(self.path))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"database {self.path}: cannot create its folder ({e.strerror})") from None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        self._migrate(target)

    def conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"database {self.path}: the store is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA busy_timeout=30000")
                conn.execute(f"PRAGMA synchronous={self._sync}")
            except sqlite3.DatabaseError as e:
                raise StoreError(f"database {self.path}: cannot open ({e})") from None
            self._local.conn, self._local.sync = conn, self._sync
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def tx(self, *, fsync: bool = True) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction. ``fsync=False`` commits without waiting for the disk: in WAL
        mode such a commit survives the process being killed and can only be rolled back by a power loss
        (the database stays consistent). Only for writes whose loss repeats work, never loses it."""
        conn = self.conn()
        self._set_sync(conn, fsync)
        conn.execute("BEGIN IMMEDIATE")
        self._local.tip = None
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            self._local.tip = None
            raise
        conn.execute("COMMIT")
        tip, self._local.tip = self._local.tip, None
        if tip is not None:             # after the commit: the anchor never holds a tip the file does not
            self.anchor.write(*tip)

    def note_tip(self, entry_id: int, mac: str, at: str) -> None:
        """The audit chain's newest entry written in this thread's open transaction (anchored on commit)."""
        self._local.tip = (entry_id, mac, at)

    def write_one(self, sql: str, args: tuple, *, fsync: bool = False) -> list[sqlite3.Row]:
        """One write statement as its own transaction (atomic by itself); all its rows (RETURNING)."""
        conn = self.conn()
        self._set_sync(conn, fsync)
        return conn.execute(sql, args).fetchall()

    def _set_sync(self, conn: sqlite3.Connection, fsync: bool) -> None:
        level = self._sync if fsync else "NORMAL" if self._sync == "FULL" else self._sync
        if getattr(self._local, "sync", self._sync) != level:   # set per connection, only when it changes
            conn.execute(f"PRAGMA synchronous={level}")
            self._local.sync = level

    def _migrate(self, target: int) -> None:
        """Every migration above the file's version up to ``target``, in one transaction (SQLite's DDL is
        transactional)."""
        try:
            with self.tx() as conn:
                conn.execute(schema.SQLITE_VERSION_TABLE)
                current = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
                if current is not None and current > SCHEMA_VERSION:
                    raise StoreError(f"database {self.path}: schema version {current}, this program needs "
                                     f"{SCHEMA_VERSION}")
                for migration in schema.pending(schema.SQLITE_MIGRATIONS, current):
                    if migration.version > target:
                        break
                    for statement in migration.statements:
                        self._apply(conn, statement)
                if current is None:
                    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (target,))
                elif current < target:
                    conn.execute("UPDATE schema_version SET version = ?", (target,))
        except sqlite3.DatabaseError as e:
            raise StoreError(f"database {self.path}: not a usable SQLite database ({e})") from None

    def _apply(self, conn: sqlite3.Connection, script: str) -> None:
        if script == schema.SQLITE_SEAL:
            from command.store.sqlite_audit import seal
            seal(self, conn)
            return
        if script == schema.SUMMARY_BUILD:
            from command.store import summary_sql
            summary_sql.rebuild(conn, "?", self.audit_key, sqlite=True)
            return
        if script == schema.SQLITE_TRAINER:
            for table, (old, new) in schema.ROLE_CHECKS.items():
                self._rebuild_check(conn, table, old, new)
            return
        added = re.match(r"ALTER TABLE (\w+) ADD COLUMN (\w+)", script)
        if added and script != schema.SQLITE_ADD_INCIDENT and added.group(2) in {
                r[1] for r in conn.execute(f"PRAGMA table_info({added.group(1)})")}:
            return      # a file that already has the column (an older one brought up by hand)
        if script == schema.SQLITE_ADD_INCIDENT and "incident_id" in {
                r[1] for r in conn.execute("PRAGMA table_info(deliveries)")}:
            return      # a file of version 1 or 2 that already had the column
        if script == schema.SQLITE_ADD_SHA and "content_sha256" in {
                r[1] for r in conn.execute("PRAGMA table_info(alerts)")}:
            return      # a file whose baseline run already had the column
        for statement in split_statements(script):
            conn.execute(statement)

    def _rebuild_check(self, conn: sqlite3.Connection, table: str, old: str, new: str) -> None:
        """SQLite cannot alter a CHECK: the table is made again with ``new`` in place of ``old`` (inside the
        migration's transaction), every row copied with its rowid (the users list keeps its order), its
        indexes and triggers made again. Values are copied as they are, so each row's audit digest holds."""
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()[0]
        if new in sql or not re.search(r"CHECK\s*\(\s*role\s+IN", sql, re.I):
            return      # done already, or a file made without a role check: nothing refuses a trainer
        if old not in sql:
            raise StoreError(f"database {self.path}: the {table} table's role check is not one this program "
                             f"knows ({old!r} expected); it cannot be upgraded")
        temp = f"{table}__rebuilt"
        create = re.sub(rf'^CREATE TABLE\s+"?{table}"?', f"CREATE TABLE {temp}", sql.replace(old, new), count=1)
        columns = ", ".join(f'"{r[1]}"' for r in conn.execute(f"PRAGMA table_info({table})"))
        others = [r[0] for r in conn.execute("SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL"
                                             " AND type IN ('index', 'trigger')", (table,))]
        conn.execute(create)
        conn.execute(f"INSERT INTO {temp} (rowid, {columns}) SELECT rowid, {columns} FROM {table} ORDER BY rowid")
        conn.execute(f"DROP TABLE {table}")
        conn.execute(f"ALTER TABLE {temp} RENAME TO {table}")
        for statement in others:
            conn.execute(statement)

    def close(self) -> None:
        """Close every connection this database opened (in any thread)."""
        with self._lock:
            self._closed = True
            for conn in self._connections:
                conn.close()
            self._connections.clear()


def split_statements(script: str) -> list[str]:
    """A script's statements, whole (a trigger's body keeps its inner semicolons)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        if not current and (not line.strip() or line.lstrip().startswith("--")):
            continue
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out


class Store(ComposedStore):
    """The SQLite store; see the module docstring. ``path`` is the database file (parents are created)."""

    def __init__(self, path: Path | str, *, durable: bool = True, audit_key: bytes | None = None,
                 anchor: Any = None) -> None:
        """``durable=False`` skips fsync (synchronous=OFF): only for throwaway stores such as a drill's.
        ``audit_key``/``anchor``: the audit chain's HMAC key and tip anchor (default: audit_key and
        <file>.audit-anchor beside the file; ``command.store.open_store`` passes the settings' ones)."""
        self.db = SQLiteDatabase(path, durable=durable, audit_key=audit_key, anchor=anchor)
        self.audit_key, self.anchor = self.db.audit_key, self.db.anchor
        self.path = self.db.path
        self.audit_chain = SQLiteAuditChain(self.db)
        self.event_log = SQLiteEventLog(self.db)
        self.queue = SQLiteDeliveryQueue(self.db)
        self.accounts = SQLiteAccounts(self.db)
        self.security = SQLiteSecurity(self.db)

    @classmethod
    def open_default(cls, settings: Any) -> Any:
        """The store of ``settings.database``; see ``command.store.open_store``."""
        from command.store import open_store
        return open_store(settings)

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (for tests and tools that read the file as SQLite)."""
        return self.db.conn()

    def _tx(self, *, fsync: bool = True):
        return self.db.tx(fsync=fsync)

    def close(self) -> None:
        self.db.close()
