"""The one persistence module of 粤政图: an append-only event log plus the outbox's alert and delivery tables.

    from command.store.sqlite import Store
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
from datetime import datetime, timezone
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from command.security.audit import GENESIS, entry_hash, payload_digest
from command.errors import IncidentExistsError, StoreError

SCHEMA_VERSION = 4     # 2: users, tokens, login_attempts, audit; 3: deliveries.incident_id; 4: cap_identifiers
                       # (older files upgrade in place)

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
-- One report per incident: two officers reporting in the same second can never share a timeline.
CREATE UNIQUE INDEX IF NOT EXISTS events_one_report ON events (incident_id) WHERE kind = 'Reported';
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
-- Version 4: a CAP identifier is reserved for its incident when the draft is made, so two drafts (in any
-- process) can never be handed the same identifier, and an identifier is never reused.
CREATE TABLE IF NOT EXISTS cap_identifiers (
    identifier TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL,
    reserved_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    identifier TEXT NOT NULL REFERENCES alerts (identifier),
    incident_id TEXT,  -- the alert's, copied so per-incident ordering is one index seek
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
-- the work queue: only unfinished rows, so claiming stays cheap however many deliveries were ever sent
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (channel, next_attempt_at)
    WHERE status IN ('pending', 'sending', 'failed');
CREATE TRIGGER IF NOT EXISTS deliveries_drill_guard BEFORE INSERT ON deliveries
WHEN (SELECT status FROM alerts WHERE identifier = NEW.identifier) IS NOT
     (CASE NEW.mode WHEN 'live' THEN 'Actual' ELSE 'Exercise' END)
BEGIN SELECT RAISE(ABORT, 'drill guard: Exercise only to exercise channels, Actual only to live ones'); END;
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'officer', 'commander', 'admin')),
    pw_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    last_login TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
    system TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'officer', 'commander')),
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS login_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    at REAL NOT NULL,
    ok INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS login_attempts_by_name ON login_attempts (name, at);
CREATE INDEX IF NOT EXISTS login_attempts_by_source ON login_attempts (source, at);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    source TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: no update'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: no delete'); END;
"""

_DELIVERY_COLUMNS = ("id, identifier, channel, mode, status, attempts, next_attempt_at, lease_until, owner, "
                     "receipt, last_error, updated_at")
_ALERT_COLUMNS = ("identifier", "incident_id", "status", "msg_type", "cap_xml", "headline_zh", "text_zh",
                  "area_desc")
UNFINISHED = ("pending", "sending", "failed")
# The next delivery a channel may send: due (or its lease ran out), and no earlier delivery of the same
# incident on the same channel still unfinished. Walks the partial index deliveries_open in due order.
_HEAD_OF_ITS_INCIDENT = """NOT EXISTS (
    SELECT 1 FROM deliveries e INDEXED BY deliveries_open_incident
    WHERE e.channel = d.channel AND e.incident_id = d.incident_id AND e.id < d.id
      AND e.status IN ('pending', 'sending', 'failed'))"""
_CLAIM_SQL = f"""
SELECT d.id FROM deliveries d
WHERE d.channel = ?1 AND d.status IN ('pending', 'sending', 'failed')
  AND ((d.status IN ('pending', 'failed') AND d.next_attempt_at <= ?2) OR (d.status = 'sending' AND d.lease_until <= ?3))
  AND {_HEAD_OF_ITS_INCIDENT}
ORDER BY d.next_attempt_at, d.id LIMIT 1"""
# Version 3 (run after _SCHEMA, so it also upgrades older files): each delivery knows its incident.
_BACKFILL_3 = """
UPDATE deliveries SET incident_id = (SELECT incident_id FROM alerts a WHERE a.identifier = deliveries.identifier)
    WHERE incident_id IS NULL"""
_INDEX_3 = """
CREATE INDEX IF NOT EXISTS deliveries_open_incident ON deliveries (channel, incident_id, id)
    WHERE status IN ('pending', 'sending', 'failed')"""


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

    def __init__(self, path: Path | str, *, durable: bool = True) -> None:
        """``durable=False`` skips fsync (synchronous=OFF): only for throwaway stores such as a drill's."""
        self.path = Path(path)
        self._sync = "FULL" if durable else "OFF"
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
                conn.execute(f"PRAGMA synchronous={self._sync}")
            except sqlite3.DatabaseError as e:
                raise StoreError(f"database {self.path}: cannot open ({e})") from None
            self._local.conn, self._local.sync = conn, self._sync
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _tx(self, *, fsync: bool = True) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction. ``fsync=False`` commits without waiting for the disk: in WAL
        mode such a commit survives the process being killed and can only be rolled back by a power loss
        (the database stays consistent). Only for writes whose loss repeats work, never loses it."""
        conn = self._conn()
        self._set_sync(conn, fsync)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _write_one(self, sql: str, args: tuple, *, fsync: bool = False) -> list[sqlite3.Row]:
        """One write statement as its own transaction (atomic by itself); all its rows (RETURNING)."""
        conn = self._conn()
        self._set_sync(conn, fsync)
        return conn.execute(sql, args).fetchall()

    def _set_sync(self, conn: sqlite3.Connection, fsync: bool) -> None:
        level = self._sync if fsync else "NORMAL" if self._sync == "FULL" else self._sync
        if getattr(self._local, "sync", self._sync) != level:   # set per connection, only when it changes
            conn.execute(f"PRAGMA synchronous={level}")
            self._local.sync = level

    def _migrate(self) -> None:
        try:
            # executescript() commits any open transaction first, so the script carries its own.
            self._conn().executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
            with self._tx() as conn:
                row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
                if row[0] in (1, 2):   # the script above added the version 2 and 4 tables; add the version 3 column
                    if "incident_id" not in {r[1] for r in conn.execute("PRAGMA table_info(deliveries)")}:
                        conn.execute("ALTER TABLE deliveries ADD COLUMN incident_id TEXT")
                    conn.execute(_BACKFILL_3)
                conn.execute(_INDEX_3)
                if row[0] is None:
                    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
                elif row[0] in (1, 2, 3):
                    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
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
    def append_event(self, incident_id: str, kind: str, payload: dict[str, Any], *, at: str, actor: str,
                     source: str = "local", by: str | None = None) -> int:
        """Append one event (and its audit entry); returns its global sequence number."""
        return self.append_events(incident_id, [(kind, payload, at, actor)], source=source, by=by)[0]

    def append_events(self, incident_id: str, records: list[tuple[str, dict[str, Any], str, str]], *,
                      source: str = "local", by: str | None = None) -> list[int]:
        """Append ``(kind, payload, at, actor)`` records of one incident in ONE transaction, each with its
        audit entry (who: ``by`` or the event's actor; from where: ``source``). All or nothing."""
        if not incident_id:
            raise StoreError(f"event refused: incident_id {incident_id!r} must be non-empty")
        bodies = []
        for kind, payload, _at, _actor in records:
            if not kind:
                raise StoreError(f"event refused for {incident_id}: kind {kind!r} must be non-empty")
            try:
                bodies.append(_json(payload))
            except (TypeError, ValueError) as e:
                raise StoreError(f"event {kind!r} of {incident_id}: payload is not JSON ({e})") from None
        seqs: list[int] = []
        tip: dict[str, Any] = {}
        with self._tx() as conn:
            for (kind, _payload, at, actor), body in zip(records, bodies):
                try:
                    cur = conn.execute(
                        "INSERT INTO events (incident_id, kind, at, payload, actor) VALUES (?, ?, ?, ?, ?)",
                        (incident_id, kind, at, body, actor))
                except sqlite3.IntegrityError as e:
                    if kind == "Reported" and "events.incident_id" in str(e):
                        raise IncidentExistsError(f"incident {incident_id} already exists; use update") from None
                    raise
                seq = int(cur.lastrowid)
                detail = {"seq": seq, "at": at, "sha256": payload_digest(body)}
                if by and by != actor:
                    detail["event_actor"] = actor
                self._audit(conn, by or actor, f"event.{kind}", incident_id, detail, source, tip)
                seqs.append(seq)
        return seqs

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
        """True when a CAP identifier was already reserved for a draft or stored as an alert (identifiers are
        never reused). ``alert(identifier)`` tells whether it was sent."""
        row = self._conn().execute(
            "SELECT 1 FROM alerts WHERE identifier = ?1 UNION ALL SELECT 1 FROM cap_identifiers WHERE identifier = ?1",
            (identifier,)).fetchone()
        return row is not None

    def reserve_identifier(self, identifier: str, incident_id: str) -> bool:
        """Reserve a CAP identifier for ``incident_id`` in one transaction; False when it is already reserved
        (for any incident, by any process) or already used by an alert."""
        if not identifier or not incident_id:
            raise StoreError(f"identifier reservation refused: {identifier!r} for {incident_id!r} (both needed)")
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM alerts WHERE identifier = ?", (identifier,)).fetchone():
                return False
            cur = conn.execute(
                "INSERT INTO cap_identifiers (identifier, incident_id, reserved_at) VALUES (?, ?, ?)"
                " ON CONFLICT (identifier) DO NOTHING", (identifier, incident_id, _utc_now()))
            return cur.rowcount == 1

    def alert(self, identifier: str) -> dict[str, Any] | None:
        """The stored alert row, or None."""
        row = self._conn().execute("SELECT * FROM alerts WHERE identifier = ?", (identifier,)).fetchone()
        return dict(row) if row else None

    def insert_alert_with_deliveries(self, alert: dict[str, Any], deliveries: list[tuple[str, str]], *,
                                     created_at: str, now: float) -> list[int]:
        """Store one alert and one pending delivery per ``(channel, mode)`` in ONE transaction."""
        try:
            with self._tx() as conn:
                owner = conn.execute("SELECT incident_id FROM cap_identifiers WHERE identifier = ?",
                                     (alert["identifier"],)).fetchone()
                if owner is not None and owner[0] != alert["incident_id"]:
                    raise StoreError(f"alert {alert['identifier']}: not stored (the identifier is reserved for "
                                     f"incident {owner[0]}, not {alert['incident_id']})")
                conn.execute(
                    f"INSERT INTO alerts ({', '.join(_ALERT_COLUMNS)}, created_at) "
                    f"VALUES ({', '.join('?' * len(_ALERT_COLUMNS))}, ?)",
                    [alert[c] for c in _ALERT_COLUMNS] + [created_at])
                ids = []
                for channel, mode in deliveries:
                    cur = conn.execute(
                        "INSERT INTO deliveries (identifier, incident_id, channel, mode, status, attempts, "
                        "next_attempt_at, updated_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)",
                        (alert["identifier"], alert["incident_id"], channel, mode, now, now))
                    ids.append(int(cur.lastrowid))
                return ids
        except sqlite3.IntegrityError as e:
            raise StoreError(f"alert {alert['identifier']}: not stored ({e})") from None

    # -- deliveries ---------------------------------------------------------------------------------
    def claim_delivery(self, channel: str, *, owner: str, now: float, lease_s: float) -> dict[str, Any] | None:
        """Take the next due delivery of ``channel`` (or one whose lease ran out): status 'sending',
        attempts + 1, leased to ``owner``. Returns the delivery joined with its alert, or None.

        Per incident and channel, deliveries go out in the order they were enqueued: one waits while an
        earlier delivery of the same incident on the same channel is unfinished (a Cancel never overtakes
        the Alert it cancels, even when that Alert is backing off after a failure)."""
        # one statement, so one short write lock and few calls per delivery (each call hands the GIL over)
        rows = self._write_one(
            f"UPDATE deliveries SET status = 'sending', attempts = attempts + 1, lease_until = ?4, owner = ?5,"
            f" updated_at = ?2 WHERE id = ({_CLAIM_SQL}) RETURNING id, identifier, channel, mode, status,"
            f" attempts, last_error", (channel, now, now, now + lease_s, owner))
        if not rows:
            return None
        out = dict(rows[0])
        alert = self._conn().execute(f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts WHERE identifier = ?",
                                     (out["identifier"],)).fetchone()
        out.update({f"alert_{k}": alert[k] for k in _ALERT_COLUMNS})
        return out

    def finish_delivery(self, delivery_id: int, *, owner: str, status: str, now: float, receipt: str | None = None,
                        last_error: str | None = None, next_attempt_at: float | None = None) -> bool:
        """Record the outcome of a claimed send. False when the lease was lost to another owner meanwhile.
        Not fsync'd: a power loss can only undo it into a delivery that is tried again (same key)."""
        if status not in ("sent", "failed", "dead"):
            raise StoreError(f"delivery {delivery_id}: cannot finish with status {status!r}")
        rows = self._write_one(
            "UPDATE deliveries SET status = ?, receipt = coalesce(?, receipt),"
            " last_error = coalesce(?, last_error), next_attempt_at = coalesce(?, next_attempt_at),"
            " lease_until = NULL, owner = NULL, updated_at = ?"
            " WHERE id = ? AND status = 'sending' AND owner = ? RETURNING id",
            (status, receipt, last_error, next_attempt_at, now, delivery_id, owner))
        return len(rows) == 1

    def sending_owners(self) -> list[str]:
        """Owners currently holding a 'sending' lease (used to find ones whose process has ended)."""
        rows = self._conn().execute(
            "SELECT DISTINCT owner FROM deliveries INDEXED BY deliveries_open"
            " WHERE status IN ('pending', 'sending', 'failed') AND status = 'sending' AND owner IS NOT NULL").fetchall()
        return [r[0] for r in rows]

    def expire_leases(self, owners: list[str], *, now: float) -> int:
        """End the leases of owners known to be gone, so their deliveries can be claimed at once."""
        if not owners:
            return 0
        with self._tx() as conn:
            cur = conn.execute(
                f"UPDATE deliveries INDEXED BY deliveries_open SET lease_until = ?"
                f" WHERE status IN ('pending', 'sending', 'failed') AND status = 'sending' AND owner IN "
                f"({', '.join('?' * len(owners))})", [now, *owners])
            return cur.rowcount

    def next_due(self, channel: str) -> float | None:
        """When the next unfinished delivery of ``channel`` may be tried (None: nothing unfinished). One that
        waits behind an earlier delivery of its incident is due when that one is, not before."""
        row = self._conn().execute(
            "SELECT min(CASE d.status WHEN 'sending' THEN d.lease_until ELSE d.next_attempt_at END)"
            " FROM deliveries d INDEXED BY deliveries_open"
            f" WHERE d.channel = ? AND d.status IN ('pending', 'sending', 'failed') AND {_HEAD_OF_ITS_INCIDENT}",
            (channel,)).fetchone()
        return row[0]

    def unfinished_channels(self) -> list[str]:
        """Channels with at least one delivery not yet sent or dead."""
        rows = self._conn().execute(
            "SELECT DISTINCT channel FROM deliveries INDEXED BY deliveries_open"
            " WHERE status IN ('pending', 'sending', 'failed')").fetchall()
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

    # -- audit --------------------------------------------------------------------------------------
    @staticmethod
    def _audit(conn: sqlite3.Connection, actor: str, action: str, target: str, detail: dict[str, Any],
               source: str, tip: dict[str, Any] | None = None) -> int:
        """Chain one audit entry inside the caller's transaction (BEGIN IMMEDIATE keeps the chain serial).
        ``tip``: the chain's last (id, hash) as this transaction left it, to chain several entries in a row."""
        if tip:
            last_id, prev = tip["id"], tip["hash"]
        else:
            last = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
            seqrow = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").fetchone()
            last_id, prev = (seqrow[0] if seqrow else 0), (last["hash"] if last else GENESIS)
        entry = {"id": last_id + 1, "at": datetime.now(timezone.utc).isoformat(
            timespec="milliseconds"), "actor": actor, "action": action, "target": target,
            "detail": json.loads(json.dumps(detail, ensure_ascii=False)), "source": source or "local"}
        digest = entry_hash(prev, entry)
        conn.execute(
            "INSERT INTO audit (id, at, actor, action, target, detail, source, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (entry["id"], entry["at"], actor, action, target,
             json.dumps(entry["detail"], ensure_ascii=False, sort_keys=True), entry["source"], prev, digest))
        if tip is not None:
            tip.update(id=entry["id"], hash=digest)
        return entry["id"]

    def append_audit(self, actor: str, action: str, target: str, detail: dict[str, Any], source: str) -> int:
        """One audit entry in its own transaction; returns its id."""
        with self._tx() as conn:
            return self._audit(conn, actor, action, target, detail, source)

    def audit_entries(self, *, last: int | None = None, raw: bool = False) -> list[dict[str, Any]]:
        """Audit rows in id order (``last`` N when given); ``raw`` keeps detail as the stored text."""
        sql = "SELECT * FROM audit ORDER BY id"
        args: tuple[Any, ...] = ()
        if last is not None:
            sql = "SELECT * FROM (SELECT * FROM audit ORDER BY id DESC LIMIT ?) ORDER BY id"
            args = (int(last),)
        rows = [dict(r) for r in self._conn().execute(sql, args).fetchall()]
        if not raw:
            for r in rows:
                r["detail"] = json.loads(r["detail"])
        return rows

    def audit_numbered(self) -> int:
        """The highest audit id the database ever handed out (0 when none)."""
        row = self._conn().execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").fetchone()
        return int(row[0]) if row else 0

    def event_digests(self) -> dict[int, str]:
        """seq -> sha256 of each stored event's payload text (what its audit entry recorded)."""
        rows = self._conn().execute("SELECT seq, payload FROM events").fetchall()
        return {r[0]: payload_digest(r[1]) for r in rows}

    # -- users, tokens, sign-in attempts (command.security.auth decides; this only stores) -------------------
    def add_user(self, name: str, role: str, pw_hash: str, *, actor: str, source: str) -> None:
        """A new user and its audit entry; refuses a name already taken."""
        try:
            with self._tx() as conn:
                conn.execute("INSERT INTO users (name, role, pw_hash, created_at) VALUES (?, ?, ?, ?)",
                             (name, role, pw_hash, _utc_now()))
                self._audit(conn, actor, "users.add", name, {"role": role}, source)
        except sqlite3.IntegrityError:
            raise StoreError(f"user {name!r} already exists (or role {role!r} is not a role)") from None

    def add_first_user(self, name: str, role: str, pw_hash: str, *, actor: str, source: str) -> bool:
        """Add the user only when there is no user at all (one transaction); True when added."""
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                return False
            conn.execute("INSERT INTO users (name, role, pw_hash, created_at) VALUES (?, ?, ?, ?)",
                         (name, role, pw_hash, _utc_now()))
            self._audit(conn, actor, "users.add", name, {"role": role, "first": True}, source)
            return True

    def user(self, name: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        return dict(row) if row else None

    def users(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._conn().execute("SELECT * FROM users ORDER BY rowid")]

    def update_user(self, name: str, *, actor: str, source: str, action: str, pw_hash: str | None = None,
                    disabled: bool | None = None, last_login: str | None = None) -> bool:
        """Change a user's hash, disabled flag or last sign-in, audited as ``action``; False: no such user."""
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE users SET pw_hash = coalesce(?, pw_hash), disabled = coalesce(?, disabled),"
                " last_login = coalesce(?, last_login) WHERE name = ?",
                (pw_hash, None if disabled is None else int(disabled), last_login, name))
            if cur.rowcount != 1:
                return False
            detail = {} if disabled is None else {"disabled": bool(disabled)}
            self._audit(conn, actor, action, name, detail, source)
            return True

    def record_attempt(self, name: str, source: str, *, ok: bool, at: float) -> None:
        """A sign-in attempt (kept for throttling) and its audit entry."""
        with self._tx() as conn:
            conn.execute("INSERT INTO login_attempts (name, source, at, ok) VALUES (?, ?, ?, ?)",
                         (name, source, at, int(ok)))
            self._audit(conn, name, "auth.signin" if ok else "auth.signin_refused", name, {}, source)

    def recent_failures(self, *, name: str | None = None, source: str | None = None, since: float) -> list[float]:
        """Times of failed attempts after ``since`` and after the last success, by name or by source."""
        col, val = ("name", name) if name is not None else ("source", source)
        last_ok = self._conn().execute(
            f"SELECT max(at) FROM login_attempts WHERE {col} = ? AND ok = 1", (val,)).fetchone()[0]
        floor = max(since, last_ok or since)
        rows = self._conn().execute(
            f"SELECT at FROM login_attempts WHERE {col} = ? AND ok = 0 AND at > ? ORDER BY at", (val, floor))
        return [r[0] for r in rows]

    def put_token(self, system: str, role: str, token_sha256: str, *, actor: str, source: str) -> None:
        """Issue (or replace) a system's token: only its hash is kept."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO tokens (system, role, token_sha256, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (system) DO UPDATE SET role = excluded.role, token_sha256 = excluded.token_sha256,"
                " created_at = excluded.created_at, revoked_at = NULL", (system, role, token_sha256, _utc_now()))
            self._audit(conn, actor, "tokens.issue", system, {"role": role}, source)

    def token_by_hash(self, token_sha256: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT * FROM tokens WHERE token_sha256 = ?", (token_sha256,)).fetchone()
        return dict(row) if row else None

    def revoke_token(self, system: str, *, actor: str, source: str) -> bool:
        with self._tx() as conn:
            cur = conn.execute("UPDATE tokens SET revoked_at = ? WHERE system = ? AND revoked_at IS NULL",
                               (_utc_now(), system))
            if cur.rowcount != 1:
                return False
            self._audit(conn, actor, "tokens.revoke", system, {}, source)
            return True

    def tokens(self) -> list[dict[str, Any]]:
        """Systems with their role and dates (never the token)."""
        return [dict(r) for r in self._conn().execute(
            "SELECT system, role, created_at, revoked_at FROM tokens ORDER BY system")]


def _json(payload: Any) -> str:
    """The stored text of a payload: sorted keys; numpy scalars as numbers; non-string keys as JSON has them."""
    try:
        return json.dumps(payload, ensure_ascii=False, sort_keys=True, default=_scalar)
    except TypeError:   # keys of mixed types cannot be sorted until JSON has made them strings
        plain = json.loads(json.dumps(payload, ensure_ascii=False, default=_scalar))
        return json.dumps(plain, ensure_ascii=False, sort_keys=True)


def _scalar(o: Any) -> Any:
    """numpy scalars (an int64 count, a bool_) are stored as the plain numbers they are."""
    if hasattr(o, "item") and getattr(o, "ndim", 0) == 0:
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON")


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
