"""The audit chain in SQLite: each entry hashes the one before it. ``BEGIN IMMEDIATE`` holds the file's write
lock for the whole transaction, so writers chain one after another; ids come from AUTOINCREMENT's
``sqlite_sequence``, which never goes back, so a cut-off tail is seen (``audit_numbered``)."""
from __future__ import annotations

import json
import sqlite3
from typing import Any

from command.security.audit import GENESIS, entry_mac
from command.store._records import sealed_entry


def chain(db: Any, conn: sqlite3.Connection, actor: str, action: str, target: str, detail: dict[str, Any],
          source: str, tip: dict[str, Any] | None = None, *, event_seq: int | None = None) -> int:
    """Chain one audit entry inside the caller's transaction: its sha256 hash and its HMAC with the database's
    key (``db.audit_key``, kept outside the file); the new tip is anchored by ``db.tx`` after the commit.
    ``tip``: the chain's last (id, hash, mac) as this transaction left it, to chain several entries in a row
    (filled in when empty). ``event_seq``: the event this entry vouches for (the service reads only those)."""
    if tip:
        last_id, prev, prev_mac = tip["id"], tip["hash"], tip["mac"]
    else:
        last = conn.execute("SELECT id, hash, mac FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        seqrow = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").fetchone()
        last_id = seqrow[0] if seqrow else 0
        prev, prev_mac = (last["hash"], last["mac"] or GENESIS) if last else (GENESIS, GENESIS)
    entry, digest, mac, detail_text = sealed_entry(last_id, prev, prev_mac, db.audit_key, actor, action, target,
                                                   detail, source)
    conn.execute(
        "INSERT INTO audit (id, at, actor, action, target, detail, source, prev_hash, hash, prev_mac, mac, event_seq) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (entry["id"], entry["at"], actor, action, target, detail_text, entry["source"], prev, digest, prev_mac, mac,
         event_seq))
    if tip is not None:
        tip.update(id=entry["id"], hash=digest, mac=mac)
    db.note_tip(entry["id"], mac, entry["at"])
    return entry["id"]


def seal(db: Any, conn: sqlite3.Connection) -> None:
    """Schema 6, once, inside the upgrade's transaction: the HMAC chain over the entries written before it
    (they are vouched for as they stood at the upgrade), each event's entry linked by ``event_seq``, and one
    entry per audited table recording the digest of every row it holds."""
    from command.security.audit import AUDITED_TABLES, digests_of
    conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
    prev_mac = GENESIS
    for row in conn.execute("SELECT * FROM audit ORDER BY id").fetchall():
        entry = dict(row, detail=json.loads(row["detail"]))
        mac = entry_mac(db.audit_key, prev_mac, entry)
        seq = entry["detail"].get("seq") if row["action"].startswith("event.") and isinstance(entry["detail"], dict) \
            else None
        conn.execute("UPDATE audit SET prev_mac = ?, mac = ?, event_seq = ? WHERE id = ?", (prev_mac, mac, seq, row["id"]))
        prev_mac = mac
    conn.execute("CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit "
                 "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: no update'); END")
    keys = {"users": "name", "tokens": "system", "alerts": "identifier", "deliveries": "id"}
    for table in AUDITED_TABLES:
        rows = digests_of(table, (dict(r) for r in conn.execute(f"SELECT * FROM {table}")), keys[table])
        if rows:
            chain(db, conn, "system", "upgrade.vouch", table, {"table": table, "rows": rows}, "upgrade")


def vouch_alert(db: Any, conn: sqlite3.Connection, identifier: str, delivery_ids: list[int]) -> None:
    """Audit a queued alert and its new deliveries with the digests of their rows as written."""
    from command.security.audit import row_digest
    alert = dict(conn.execute("SELECT * FROM alerts WHERE identifier = ?", (identifier,)).fetchone())
    chain(db, conn, "outbox", "alerts.queue", identifier,
          {"table": "alerts", "key": identifier, "row": row_digest("alerts", alert)}, "outbox")
    rows = {str(r["id"]): row_digest("deliveries", dict(r)) for r in conn.execute(
        f"SELECT * FROM deliveries WHERE id IN ({', '.join('?' * len(delivery_ids))})", delivery_ids)}
    if rows:
        chain(db, conn, "outbox", "deliveries.queue", identifier, {"table": "deliveries", "rows": rows}, "outbox")


def alert_as_queued(db: Any, alert: dict[str, Any]) -> bool:
    """Whether an alert row is still what its (HMAC-valid) audit entry recorded when it was queued."""
    from command.security.audit import mac_ok, row_digest
    conn = db.conn()
    entry = conn.execute("SELECT * FROM audit INDEXED BY audit_by_target WHERE target = ? AND action = 'alerts.queue'"
                         " ORDER BY id DESC LIMIT 1", (alert["identifier"],)).fetchone()
    if entry is None:       # queued before schema 6: the upgrade vouched for every alert row at once
        entry = conn.execute("SELECT * FROM audit INDEXED BY audit_by_target WHERE target = 'alerts'"
                             " AND action = 'upgrade.vouch' ORDER BY id DESC LIMIT 1").fetchone()
    if entry is None or not mac_ok(db.audit_key, dict(entry)):
        return False
    detail = json.loads(entry["detail"])
    want = detail.get("row") if "row" in detail else (detail.get("rows") or {}).get(alert["identifier"])
    return want == row_digest("alerts", alert)


class SQLiteAuditChain:
    def __init__(self, db: Any) -> None:
        self.db = db

    def append_audit(self, actor: str, action: str, target: str, detail: dict[str, Any], source: str) -> int:
        with self.db.tx() as conn:
            return chain(self.db, conn, actor, action, target, detail, source)

    def audit_entries(self, *, last: int | None = None, raw: bool = False) -> list[dict[str, Any]]:
        sql = "SELECT * FROM audit ORDER BY id"
        args: tuple[Any, ...] = ()
        if last is not None:
            sql = "SELECT * FROM (SELECT * FROM audit ORDER BY id DESC LIMIT ?) ORDER BY id"
            args = (int(last),)
        rows = [dict(r) for r in self.db.conn().execute(sql, args).fetchall()]
        if not raw:
            for r in rows:
                r["detail"] = json.loads(r["detail"])
        return rows

    def audit_numbered(self) -> int:
        row = self.db.conn().execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").fetchone()
        return int(row[0]) if row else 0
