"""The audit chain in SQLite: each entry hashes the one before it. ``BEGIN IMMEDIATE`` holds the file's write
lock for the whole transaction, so writers chain one after another; ids come from AUTOINCREMENT's
``sqlite_sequence``, which never goes back, so a cut-off tail is seen (``audit_numbered``)."""
from __future__ import annotations

import json
import sqlite3
from typing import Any

from command.security.audit import GENESIS
from command.store._records import audit_entry


def chain(conn: sqlite3.Connection, actor: str, action: str, target: str, detail: dict[str, Any], source: str,
          tip: dict[str, Any] | None = None) -> int:
    """Chain one audit entry inside the caller's transaction. ``tip``: the chain's last (id, hash) as this
    transaction left it, to chain several entries in a row (filled in when empty)."""
    if tip:
        last_id, prev = tip["id"], tip["hash"]
    else:
        last = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        seqrow = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").fetchone()
        last_id, prev = (seqrow[0] if seqrow else 0), (last["hash"] if last else GENESIS)
    entry, digest, detail_text = audit_entry(last_id, prev, actor, action, target, detail, source)
    conn.execute(
        "INSERT INTO audit (id, at, actor, action, target, detail, source, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (entry["id"], entry["at"], actor, action, target, detail_text, entry["source"], prev, digest))
    if tip is not None:
        tip.update(id=entry["id"], hash=digest)
    return entry["id"]


class SQLiteAuditChain:
    def __init__(self, db: Any) -> None:
        self.db = db

    def append_audit(self, actor: str, action: str, target: str, detail: dict[str, Any], source: str) -> int:
        with self.db.tx() as conn:
            return chain(conn, actor, action, target, detail, source)

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
