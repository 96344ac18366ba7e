"""The one persistence module of 粤政图: an append-only event log plus the outbox's alert and delivery tables.

    from command.store import Store
    store = Store.open_default()                       # settings.database_path, parents created
    seq = store.append_event("GD-1", "reported", {"type": "fire"}, at="2024-05-01T08:00:00+08:00", actor="张三")
    for ev in store.events("GD-1", since_seq=0): ...   # StoredEvent(seq, incident_id, kind, at, payload, actor)
    store.close()

SQLite (stdlib ``sqlite3``) in WAL mode with foreign keys, a busy timeout and a schema-version table. Every
SQL statement of the product lives in this module, so a PostgreSQL store can follow by re-implementing it.
Thread-safe: each thread gets its own connection; writes that belong together run in one ``BEGIN IMMEDIATE``
transaction. Events cannot be updated or deleted (there is no API for it and triggers refuse it), and the
database itself refuses a delivery of an Exercise alert to a live channel or of an Actual to an exercise one.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from command.errors import StoreError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    payload TEXT NOT NULL CHECK (json_valid(payload)),
    actor TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_incident ON events (incident_id, seq);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: no update'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: no delete'); END;
CREATE TABLE IF NOT EXISTS alerts (
    identifier TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('Actual', 'Exercise')),
    msg_type TEXT NOT NULL,
    cap_xml TEXT NOT NULL,
    headline_zh TEXT NOT NULL DEFAULT '',
    text_zh TEXT NOT NULL DEFAULT '',
    area_desc TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_incident ON alerts (incident_id);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    identifier TEXT NOT NULL REFERENCES alerts (identifier),
    channel TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('live', 'exercise')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    lease_until REAL,
    owner TEXT,
    receipt TEXT,
    last_error TEXT,
    updated_at REAL NOT NULL,
    UNIQUE (identifier, channel)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (channel, status, next_attempt_at);
CREATE TRIGGER IF NOT EXISTS deliveries_drill_guard BEFORE INSERT ON deliveries
WHEN (SELECT status FROM alerts WHERE identifier = NEW.identifier) IS NOT
     (CASE NEW.mode WHEN 'live' THEN 'Actual' ELSE 'Exercise' END)
BEGIN SELECT RAISE(ABORT, 'drill guard: Exercise only to exercise channels, Actual only to live ones'); END;
"""

_DELIVERY_COLUMNS = ("id, identifier, channel, mode, status, attempts, next_attempt_at, lease_until, owner, "
                     "receipt, last_error, updated_at")
_ALERT_COLUMNS = ("identifier", "incident_id", "status", "msg_type", "cap_xml", "headline_zh", "text_zh",
                  "area_desc")
UNFINISHED = ("pending", "sending", "failed")


@dataclass(frozen=True)
class StoredEvent:
    """One line of an incident's timeline as stored: ``seq`` is global and strictly increasing."""

    seq: int
    incident_id: str
    kind: str
    at: str
    payload: dict[str, Any]
    actor: str


class Store:
    """SQLite persistence; see the module docstring. ``path`` is the database file (parents are created)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"database {self.path}: cannot create its folder ({e.strerror})") from None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        self._migrate()

    @classmethod
    def open_default(cls, settings: Any = None) -> Store:
        """The store at ``settings.database_path`` (default: the process settings)."""
        if settings is None:
            from settings import get_settings
            settings = get_settings()
        return cls(settings.database_path)

    # -- connections and transactions ---------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
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
                conn.execute("PRAGMA synchronous=FULL")
            except sqlite3.DatabaseError as e:
                raise StoreError(f"database {self.path}: cannot open ({e})") from None
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _migrate(self) -> None:
        try:
            # executescript() commits any open transaction first, so the script carries its own.
            self._conn().executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
            with self._tx() as conn:
                row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
                if row[0] is None:
                    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
                elif row[0] != SCHEMA_VERSION:
                    raise StoreError(f"database {self.path}: schema version {row[0]}, this program needs "
                                     f"{SCHEMA_VERSION}")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"database {self.path}: not a usable SQLite database ({e})") from None

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        with self._lock:
            self._closed = True
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    # -- events -------------------------------------------------------------------------------------
    def append_event(self, incident_id: str, kind: str, payload: dict[str, Any], *, at: str, actor: str) -> int:
        """Append one event; returns its global sequence number."""
        if not incident_id or not kind:
            raise StoreError(f"event refused: incident_id {incident_id!r} and kind {kind!r} must be non-empty")
        try:
            body = json.dumps(payload, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError) as e:
            raise StoreError(f"event {kind!r} of {incident_id}: payload is not JSON ({e})") from None
        with self._tx() as conn:
            cur = conn.execute("INSERT INTO events (incident_id, kind, at, payload, actor) VALUES (?, ?, ?, ?, ?)",
                               (incident_id, kind, at, body, actor))
            return int(cur.lastrowid)

    def events(self, incident_id: str | None = None, since_seq: int = 0) -> list[StoredEvent]:
        """Events after ``since_seq`` in sequence order, of one incident or of all."""
        sql = "SELECT seq, incident_id, kind, at, payload, actor FROM events WHERE seq > ?"
        args: list[Any] = [since_seq]
        if incident_id is not None:
            sql += " AND incident_id = ?"
            args.append(incident_id)
        rows = self._conn().execute(sql + " ORDER BY seq", args).fetchall()
        return [StoredEvent(r["seq"], r["incident_id"], r["kind"], r["at"], json.loads(r["payload"]), r["actor"])
                for r in rows]

    def incident_ids(self) -> list[str]:
        """Every incident that has at least one event, in order of first appearance."""
        rows = self._conn().execute(
            "SELECT incident_id FROM events GROUP BY incident_id ORDER BY min(seq)").fetchall()
        return [r[0] for r in rows]

    # -- alerts -------------------------------------------------------------------------------------
    def identifier_used(self, identifier: str) -> bool:
        """True when a CAP identifier was already stored as an alert (identifiers are never reused)."""
        row = self._conn().execute("SELECT 1 FROM alerts WHERE identifier = ?", (identifier,)).fetchone()
        return row is not None

    def alert(self, identifier: str) -> dict[str, Any] | None:
        """The stored alert row, or None."""
        row = self._conn().execute("SELECT * FROM alerts WHERE identifier = ?", (identifier,)).fetchone()
        return dict(row) if row else None

    def insert_alert_with_deliveries(self, alert: dict[str, Any], deliveries: list[tuple[str, str]], *,
                                     created_at: str, now: float) -> list[int]:
        """Store one alert and one pending delivery per ``(channel, mode)`` in ONE transaction."""
        try:
            with self._tx() as conn:
                conn.execute(
                    f"INSERT INTO alerts ({', '.join(_ALERT_COLUMNS)}, created_at) "
                    f"VALUES ({', '.join('?' * len(_ALERT_COLUMNS))}, ?)",
                    [alert[c] for c in _ALERT_COLUMNS] + [created_at])
                ids = []
                for channel, mode in deliveries:
                    cur = conn.execute(
                        "INSERT INTO deliveries (identifier, channel, mode, status, attempts, next_attempt_at, "
                        "updated_at) VALUES (?, ?, ?, 'pending', 0, ?, ?)",
                        (alert["identifier"], channel, mode, now, now))
                    ids.append(int(cur.lastrowid))
                return ids
        except sqlite3.IntegrityError as e:
            raise StoreError(f"alert {alert['identifier']}: not stored ({e})") from None

    # -- deliveries ---------------------------------------------------------------------------------
    def claim_delivery(self, channel: str, *, owner: str, now: float, lease_s: float) -> dict[str, Any] | None:
        """Take the next due delivery of ``channel`` (or one whose lease ran out): status 'sending',
        attempts + 1, leased to ``owner``. Returns the delivery joined with its alert, or None."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT id FROM deliveries WHERE channel = ? AND ("
                " (status IN ('pending', 'failed') AND next_attempt_at <= ?)"
                " OR (status = 'sending' AND lease_until <= ?)) ORDER BY next_attempt_at, id LIMIT 1",
                (channel, now, now)).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, lease_until = ?, owner = ?, "
                "updated_at = ? WHERE id = ?", (now + lease_s, owner, now, row[0]))
            out = conn.execute(
                f"SELECT d.id, d.identifier, d.channel, d.mode, d.status, d.attempts, d.last_error, "
                f"{', '.join('a.' + c + ' AS alert_' + c for c in _ALERT_COLUMNS)} "
                "FROM deliveries d JOIN alerts a USING (identifier) WHERE d.id = ?", (row[0],)).fetchone()
            return dict(out)

    def finish_delivery(self, delivery_id: int, *, owner: str, status: str, now: float, receipt: str | None = None,
                        last_error: str | None = None, next_attempt_at: float | None = None) -> bool:
        """Record the outcome of a claimed send. False when the lease was lost to another owner meanwhile."""
        if status not in ("sent", "failed", "dead"):
            raise StoreError(f"delivery {delivery_id}: cannot finish with status {status!r}")
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE deliveries SET status = ?, receipt = coalesce(?, receipt),"
                " last_error = coalesce(?, last_error), next_attempt_at = coalesce(?, next_attempt_at), lease_until = NULL, owner = NULL, updated_at = ?"
                " WHERE id = ? AND status = 'sending' AND owner = ?",
                (status, receipt, last_error, next_attempt_at, now, delivery_id, owner))
            return cur.rowcount == 1

    def sending_owners(self) -> list[str]:
        """Owners currently holding a 'sending' lease (used to find ones whose process has ended)."""
        rows = self._conn().execute(
            "SELECT DISTINCT owner FROM deliveries WHERE status = 'sending' AND owner IS NOT NULL").fetchall()
        return [r[0] for r in rows]

    def expire_leases(self, owners: list[str], *, now: float) -> int:
        """End the leases of owners known to be gone, so their deliveries can be claimed at once."""
        if not owners:
            return 0
        with self._tx() as conn:
            cur = conn.execute(
                f"UPDATE deliveries SET lease_until = ? WHERE status = 'sending' AND owner IN "
                f"({', '.join('?' * len(owners))})", [now, *owners])
            return cur.rowcount

    def next_due(self, channel: str) -> float | None:
        """When the next unfinished delivery of ``channel`` may be tried (None: nothing unfinished)."""
        row = self._conn().execute(
            "SELECT min(CASE status WHEN 'sending' THEN lease_until ELSE next_attempt_at END) FROM deliveries"
            " WHERE channel = ? AND status IN ('pending', 'sending', 'failed')", (channel,)).fetchone()
        return row[0]

    def unfinished_channels(self) -> list[str]:
        """Channels with at least one delivery not yet sent or dead."""
        rows = self._conn().execute(
            "SELECT DISTINCT channel FROM deliveries WHERE status IN ('pending', 'sending', 'failed')").fetchall()
        return [r[0] for r in rows]

    def deliveries(self, identifier: str | None = None) -> list[dict[str, Any]]:
        """Delivery rows (all, or of one alert) in insertion order."""
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM deliveries"
        args: tuple[Any, ...] = ()
        if identifier is not None:
            sql += " WHERE identifier = ?"
            args = (identifier,)
        return [dict(r) for r in self._conn().execute(sql + " ORDER BY id", args).fetchall()]

    def delivery_counts(self, mode: str | None = None) -> dict[str, int]:
        """Number of deliveries by status, of one mode or of all."""
        sql = "SELECT status, count(*) FROM deliveries"
        args: tuple[Any, ...] = ()
        if mode is not None:
            sql += " WHERE mode = ?"
            args = (mode,)
        return {r[0]: r[1] for r in self._conn().execute(sql + " GROUP BY status", args).fetchall()}
