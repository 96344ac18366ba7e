"""The audit chain in PostgreSQL. Its tip (last id and hash) is one row, ``audit_tip``; a transaction that
writes audit entries locks it first (``chained``), so concurrent writers on any server chain one after
another, and ``audit_numbered`` is the tip's id, which only ever grows."""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from command.security.audit import GENESIS, entry_mac
from command.store._records import sealed_entry


@contextmanager
def chained(db: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    """A transaction holding the chain's tip: yields (connection, tip); the tip is saved before commit."""
    with db.tx() as conn:
        tip = dict(conn.execute("SELECT id, hash, mac FROM audit_tip FOR UPDATE").fetchone())
        tip["key"] = db.audit_key          # the HMAC key, kept outside the database
        start = tip["id"]
        yield conn, tip
        if tip["id"] != start:
            conn.execute("UPDATE audit_tip SET id = %s, hash = %s, mac = %s", (tip["id"], tip["hash"], tip["mac"]))
    if tip["id"] != start:                 # committed: anchor the tip outside the database
        db.anchor.write(tip["id"], tip["mac"], tip.get("at", ""))


def chain(conn: Any, tip: dict[str, Any], actor: str, action: str, target: str, detail: dict[str, Any],
          source: str, *, event_seq: int | None = None) -> int:
    """Chain one audit entry after ``tip`` inside the caller's ``chained`` transaction (hash and HMAC with
    the tip's key); moves the tip. ``event_seq``: the event the entry vouches for."""
    prev_mac = tip.get("mac") or GENESIS
    entry, digest, mac, detail_text = sealed_entry(tip["id"], tip["hash"], prev_mac, tip["key"], actor, action,
                                                   target, detail, source)
    conn.execute(
        "INSERT INTO audit (id, at, actor, action, target, detail, source, prev_hash, hash, prev_mac, mac, event_seq) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (entry["id"], entry["at"], actor, action, target, detail_text, entry["source"], tip["hash"], digest,
         prev_mac, mac, event_seq))
    tip.update(id=entry["id"], hash=digest, mac=mac, at=entry["at"])
    return entry["id"]


def chain_many(conn: Any, tip: dict[str, Any], entries: list[tuple[str, str, str, dict[str, Any], str, int | None]]) -> None:
    """Chain several audit entries (actor, action, target, detail, source, event_seq) after ``tip``, in order,
    inside the caller's ``chained`` transaction: the same entries as ``chain`` one at a time, sent in one
    pipelined ``executemany``; moves the tip."""
    if len(entries) == 1:
        actor, action, target, detail, source, seq = entries[0]
        chain(conn, tip, actor, action, target, detail, source, event_seq=seq)
        return
    rows = []
    for actor, action, target, detail, source, seq in entries:
        prev_mac = tip.get("mac") or GENESIS
        entry, digest, mac, detail_text = sealed_entry(tip["id"], tip["hash"], prev_mac, tip["key"], actor, action,
                                                       target, detail, source)
        rows.append((entry["id"], entry["at"], actor, action, target, detail_text, entry["source"], tip["hash"], digest,
                     prev_mac, mac, seq))
        tip.update(id=entry["id"], hash=digest, mac=mac, at=entry["at"])
    conn.cursor().executemany(
        "INSERT INTO audit (id, at, actor, action, target, detail, source, prev_hash, hash, prev_mac, mac, event_seq) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)


def seal(key: bytes, conn: Any) -> None:
    """Schema 6 inside the upgrade's transaction: the HMAC chain over the entries written before it, each
    event's entry linked by event_seq, and one entry per audited table with the digest of every row."""
    from command.security.audit import AUDITED_TABLES, digests_of
    conn.execute("ALTER TABLE audit DISABLE TRIGGER audit_append_only")
    prev_mac = GENESIS
    for row in conn.execute("SELECT * FROM audit ORDER BY id").fetchall():
        entry = dict(row, detail=json.loads(row["detail"]))
        mac = entry_mac(key, prev_mac, entry)
        seq = entry["detail"].get("seq") if row["action"].startswith("event.") and isinstance(entry["detail"], dict) \
            else None
        conn.execute("UPDATE audit SET prev_mac = %s, mac = %s, event_seq = %s WHERE id = %s",
                     (prev_mac, mac, seq, row["id"]))
        prev_mac = mac
    conn.execute("ALTER TABLE audit ENABLE TRIGGER audit_append_only")
    tip = dict(conn.execute("SELECT id, hash FROM audit_tip FOR UPDATE").fetchone(), mac=prev_mac, key=key)
    keys = {"users": "name", "tokens": "system", "alerts": "identifier", "deliveries": "id"}
    for table in AUDITED_TABLES:
        rows = digests_of(table, conn.execute(f"SELECT * FROM {table}").fetchall(), keys[table])
        if rows:
            chain(conn, tip, "system", "upgrade.vouch", table, {"table": table, "rows": rows}, "upgrade")
    conn.execute("UPDATE audit_tip SET id = %s, hash = %s, mac = %s", (tip["id"], tip["hash"], tip["mac"]))


class PostgresAuditChain:
    def __init__(self, db: Any) -> None:
        self.db = db

    def append_audit(self, actor: str, action: str, target: str, detail: dict[str, Any], source: str) -> int:
        with chained(self.db) as (conn, tip):
            return chain(conn, tip, actor, action, target, detail, source)

    def audit_entries(self, *, last: int | None = None, raw: bool = False) -> list[dict[str, Any]]:
        columns = "id, at, actor, action, target, detail, source, prev_hash, hash, prev_mac, mac, event_seq"
        if last is None:
            rows = self.db.rows(f"SELECT {columns} FROM audit ORDER BY id")
        else:
            rows = self.db.rows(f"SELECT * FROM (SELECT {columns} FROM audit ORDER BY id DESC LIMIT %s) t"
                                " ORDER BY id", (int(last),))
        if not raw:
            for r in rows:
                r["detail"] = json.loads(r["detail"])
        return rows

    def audit_numbered(self) -> int:
        return int(self.db.row("SELECT id FROM audit_tip")["id"])
