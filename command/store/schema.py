"""The schema of each backend as versioned migrations, and the one rule that applies them.

A database records its version in ``schema_version``; opening it runs, in one transaction, every migration
above that version, in order, then records ``SCHEMA_VERSION``. A database newer than this program is refused.
History (both backends share the numbers):

1-2  events, alerts, deliveries; users, tokens, login_attempts, audit (SQLite files of these versions are
     brought to version 2 by the baseline, whose statements all say IF NOT EXISTS)
3    deliveries.incident_id, so per-incident ordering on a channel is one index seek
4    cap_identifiers: a CAP identifier reserved for its incident when the draft is made
5    alerts.content_sha256: the digest of what every channel sends, as approved (checked before each send)
6    trust at the door (issue 13): users.scope and tokens.scope (existing ones: the province), tokens.expires_at
     (existing ones: a year after issue), the throttle counters, server-side sessions, and the audit's
     HMAC chain (prev_mac, mac) with event_seq linking each event to its entry; the upgrade seals the
     entries written before it with the key (``seal`` in sqlite_audit / postgres)
7    the stored ``trainer`` role: users.role and tokens.role accept it (SQLite rebuilds both tables, since it
     cannot alter a CHECK: every row, column, rowid and index kept, so each row's audit digest still holds)
8    a year of history (issue 12): ``incident_summary``, one row per incident kept in the transaction that
     appends its events (``command.store.summary``), with an index per list filter, its search text apart
     (``incident_search``) and its row count (``incident_tally``); the upgrade builds it from
     the events already stored (only those their audit entry vouches for, as the service reads them)

PostgreSQL starts at version 3 (it never shipped before); its baseline is the SQLite schema of version 3,
with the triggers as PL/pgSQL functions and an ``audit_tip`` row whose lock keeps the chain serial.
"""
from __future__ import annotations

from dataclasses import dataclass

from command.store import summary as _summary

SCHEMA_VERSION = 8


@dataclass(frozen=True)
class Migration:
    version: int
    why: str
    statements: tuple[str, ...]


def pending(migrations: tuple[Migration, ...], current: int | None) -> list[Migration]:
    """The migrations a database at ``current`` (None: empty) needs, in order."""
    return [m for m in migrations if current is None or m.version > current]


# -- SQLite -------------------------------------------------------------------------------------------
_SQLITE_BASELINE = """
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

# statements are split on ';\n' lines ending a statement; trigger bodies keep their inner '; END;'
SQLITE_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
SQLITE_ADD_INCIDENT = "ALTER TABLE deliveries ADD COLUMN incident_id TEXT"   # guarded: see sqlite.py
PG_SEAL = "-- seal: the HMAC over the entries written before version 6 (Python, needs the key: postgres.py)"
SQLITE_SEAL = "-- seal: the HMAC over the entries written before version 6 (Python, needs the key: sqlite.py)"
SQLITE_TRAINER = "-- rebuild users and tokens with the trainer role in their CHECK (Python: sqlite.rebuild_check)"
# the role CHECK of each table before version 7 and after it (the same text in both backends)
ROLE_CHECKS = {
    "users": ("role IN ('viewer', 'officer', 'commander', 'admin')",
              "role IN ('viewer', 'officer', 'commander', 'admin', 'trainer')"),
    "tokens": ("role IN ('viewer', 'officer', 'commander')",
               "role IN ('viewer', 'officer', 'commander', 'trainer')"),
}
# the projection's rows from the events already stored (Python: summary_sql.rebuild, both backends)
SUMMARY_BUILD = "-- build incident_summary from the stored events (Python: command.store.summary_sql.rebuild)"
SQLITE_ADD_SHA = "ALTER TABLE alerts ADD COLUMN content_sha256 TEXT NOT NULL DEFAULT ''"   # guarded: sqlite.py
SQLITE_MIGRATIONS = (
    Migration(2, "the baseline: every table of version 2 (older files gain what they lack)", (_SQLITE_BASELINE,)),
    Migration(3, "each delivery knows its incident: per-incident order is one index seek", (
        SQLITE_ADD_INCIDENT,
        "UPDATE deliveries SET incident_id = (SELECT incident_id FROM alerts a"
        " WHERE a.identifier = deliveries.identifier) WHERE incident_id IS NULL",
        "CREATE INDEX IF NOT EXISTS deliveries_open_incident ON deliveries (channel, incident_id, id)"
        " WHERE status IN ('pending', 'sending', 'failed')")),
    Migration(4, "CAP identifiers reserved when the draft is made, never handed out twice", (
        "CREATE TABLE IF NOT EXISTS cap_identifiers (identifier TEXT PRIMARY KEY, incident_id TEXT NOT NULL,"
        " reserved_at TEXT NOT NULL)",)),
    Migration(5, "the alert row keeps the sha256 of its approved content, so what leaves can be checked", (
        SQLITE_ADD_SHA,)),
    Migration(6, "jurisdictions, token expiry, throttle counters, server-side sessions, the audit's HMAC chain", (
        "ALTER TABLE users ADD COLUMN scope TEXT NOT NULL DEFAULT '440000'",
        "ALTER TABLE tokens ADD COLUMN scope TEXT NOT NULL DEFAULT '440000'",
        "ALTER TABLE tokens ADD COLUMN expires_at TEXT",
        "UPDATE tokens SET expires_at = strftime('%Y-%m-%dT%H:%M:%S+00:00', created_at, '+365 days')"
        " WHERE expires_at IS NULL",
        "CREATE TABLE IF NOT EXISTS throttle (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, key TEXT NOT NULL,"
        " at REAL NOT NULL, ok INTEGER NOT NULL)",
        "CREATE INDEX IF NOT EXISTS throttle_by_key ON throttle (kind, key, at)",
        "CREATE TABLE IF NOT EXISTS sessions (id_sha256 TEXT PRIMARY KEY, username TEXT NOT NULL, source TEXT,"
        " started_at REAL NOT NULL, seen_at REAL NOT NULL, ended_at REAL, why TEXT)",
        "CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (username) WHERE ended_at IS NULL",
        "ALTER TABLE audit ADD COLUMN prev_mac TEXT",
        "ALTER TABLE audit ADD COLUMN mac TEXT",
        "ALTER TABLE audit ADD COLUMN event_seq INTEGER",
        "CREATE INDEX IF NOT EXISTS audit_by_event ON audit (event_seq) WHERE event_seq IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS audit_by_target ON audit (target, action, id)",
        SQLITE_SEAL)),
    Migration(7, "the trainer role is stored: users and tokens may hold it", (SQLITE_TRAINER,)),
    Migration(8, "the incident list reads a projection kept with the events, not every timeline folded", (
        _summary.SQLITE_TABLE, _summary.SQLITE_SEARCH, _summary.SQLITE_TALLY, *_summary.INDEXES, SUMMARY_BUILD)),
)

# -- PostgreSQL ---------------------------------------------------------------------------------------
_PG_BASELINE = """
CREATE TABLE events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    payload TEXT NOT NULL CHECK ((payload::jsonb) IS NOT NULL),
    actor TEXT NOT NULL
);
CREATE INDEX events_by_incident ON events (incident_id, seq);
CREATE UNIQUE INDEX events_one_report ON events (incident_id) WHERE kind = 'Reported';
CREATE FUNCTION yzt_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '% are append-only: no %', TG_ARGV[0], lower(TG_OP) USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION yzt_append_only('events');
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION yzt_append_only('events');
CREATE TABLE alerts (
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
CREATE INDEX alerts_by_incident ON alerts (incident_id);
CREATE TABLE deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    identifier TEXT NOT NULL REFERENCES alerts (identifier),
    incident_id TEXT,
    channel TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('live', 'exercise')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    lease_until DOUBLE PRECISION,
    owner TEXT,
    receipt TEXT,
    last_error TEXT,
    updated_at DOUBLE PRECISION NOT NULL,
    UNIQUE (identifier, channel)
);
CREATE INDEX deliveries_open ON deliveries (channel, next_attempt_at, id)
    WHERE status IN ('pending', 'sending', 'failed');
CREATE INDEX deliveries_open_incident ON deliveries (channel, incident_id, id)
    WHERE status IN ('pending', 'sending', 'failed');
CREATE FUNCTION yzt_drill_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT status FROM alerts WHERE identifier = NEW.identifier) IS DISTINCT FROM
     (CASE NEW.mode WHEN 'live' THEN 'Actual' ELSE 'Exercise' END) THEN
    RAISE EXCEPTION 'drill guard: Exercise only to exercise channels, Actual only to live ones'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER deliveries_drill_guard BEFORE INSERT ON deliveries
    FOR EACH ROW EXECUTE FUNCTION yzt_drill_guard();
CREATE TABLE users (
    n BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'officer', 'commander', 'admin')),
    pw_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    last_login TEXT
);
CREATE TABLE tokens (
    system TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'officer', 'commander')),
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE login_attempts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    ok INTEGER NOT NULL
);
CREATE INDEX login_attempts_by_name ON login_attempts (name, at);
CREATE INDEX login_attempts_by_source ON login_attempts (source, at);
CREATE TABLE audit (
    id BIGINT PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    source TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION yzt_append_only('audit entries');
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION yzt_append_only('audit entries');
-- The chain's tip: one row, locked (FOR UPDATE) by every transaction that writes audit entries, so
-- concurrent writers on any server chain one after another and events get their seq in commit order.
CREATE TABLE audit_tip (
    one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    id BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_tip (id, hash) VALUES (0, repeat('0', 64));   -- command.security.audit.GENESIS
"""

PG_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
PG_MIGRATIONS = (
    Migration(3, "the baseline: the SQLite schema of version 3 in PostgreSQL's words", (_PG_BASELINE,)),
    Migration(4, "CAP identifiers reserved when the draft is made, never handed out twice", (
        "CREATE TABLE cap_identifiers (identifier TEXT PRIMARY KEY, incident_id TEXT NOT NULL,"
        " reserved_at TEXT NOT NULL)",)),
    Migration(5, "the alert row keeps the sha256 of its approved content, so what leaves can be checked", (
        "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS content_sha256 TEXT NOT NULL DEFAULT ''",)),
    Migration(6, "jurisdictions, token expiry, throttle counters, server-side sessions, the audit's HMAC chain", (
        "ALTER TABLE users ADD COLUMN IF NOT EXISTS scope TEXT NOT NULL DEFAULT '440000'",
        "ALTER TABLE tokens ADD COLUMN IF NOT EXISTS scope TEXT NOT NULL DEFAULT '440000'",
        "ALTER TABLE tokens ADD COLUMN IF NOT EXISTS expires_at TEXT",
        "UPDATE tokens SET expires_at = to_char((created_at::timestamptz + interval '365 days') AT TIME ZONE 'UTC',"
        " 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"') WHERE expires_at IS NULL",
        "CREATE TABLE IF NOT EXISTS throttle (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind TEXT NOT NULL,"
        " key TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, ok INTEGER NOT NULL)",
        "CREATE INDEX IF NOT EXISTS throttle_by_key ON throttle (kind, key, at)",
        "CREATE TABLE IF NOT EXISTS sessions (id_sha256 TEXT PRIMARY KEY, username TEXT NOT NULL, source TEXT,"
        " started_at DOUBLE PRECISION NOT NULL, seen_at DOUBLE PRECISION NOT NULL, ended_at DOUBLE PRECISION, why TEXT)",
        "CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (username) WHERE ended_at IS NULL",
        "ALTER TABLE audit ADD COLUMN IF NOT EXISTS prev_mac TEXT",
        "ALTER TABLE audit ADD COLUMN IF NOT EXISTS mac TEXT",
        "ALTER TABLE audit ADD COLUMN IF NOT EXISTS event_seq BIGINT",
        "CREATE INDEX IF NOT EXISTS audit_by_event ON audit (event_seq) WHERE event_seq IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS audit_by_target ON audit (target, action, id)",
        "ALTER TABLE audit_tip ADD COLUMN IF NOT EXISTS mac TEXT NOT NULL DEFAULT repeat('0', 64)",
        PG_SEAL)),
    Migration(7, "the trainer role is stored: users and tokens may hold it", tuple(
        f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {table}_role_check,"
        f" ADD CONSTRAINT {table}_role_check CHECK ({new})" for table, (_, new) in ROLE_CHECKS.items())),
    Migration(8, "the incident list reads a projection kept with the events, not every timeline folded", (
        _summary.PG_TABLE, _summary.PG_SEARCH, _summary.PG_TALLY, *_summary.INDEXES, SUMMARY_BUILD)),
)
