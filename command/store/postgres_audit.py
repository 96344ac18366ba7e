"""The audit chain in PostgreSQL. Its tip (last id and hash) is one row, ``audit_tip``; a transaction that
writes audit entries locks it first (``chained``), so concurrent writers on any server chain one after
another, and ``audit_numbered`` is the tip's id, which only ever grows."""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from command.store._records import audit_entry


@contextmanager
def chained(db: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    """A transaction holding the chain's tip: yields (connection, tip); the tip is saved before commit."""
    with db.tx() as conn:
        tip = dict(conn.execute("SELECT id, hash FROM audit_tip FOR UPDATE").fetchone())
        start = tip["id"]
        yield conn, tip
        if tip["id"] != start:
            conn.execute("UPDATE audit_tip SET id = %s, hash = %s", (tip["id"], tip["hash"]))


def chain(conn: Any, tip: dict[str, Any], actor: str, action: str, target: str, detail: dict[str, Any],
          source: str) -> int:
    """Chain one audit entry after ``tip`` inside the caller's ``chained`` transaction; moves the tip."""
    entry, digest, detail_text = audit_entry(tip["id"], tip["hash"], actor, action, target, detail, source)
    conn.execute(
        "INSERT INTO audit (id, at, actor, action, target, detail, source, prev_hash, hash) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (entry["id"], entry["at"], actor, action, target, detail_text, entry["source"], tip["hash"], digest))
    tip.update(id=entry["id"], hash=digest)
    return entry["id"]


class PostgresAuditChain:
    def __init__(self, db: Any) -> None:
        self.db = db

    def append_audit(self, actor: str, action: str, target: str, detail: dict[str, Any], source: str) -> int:
        with chained(self.db) as (conn, tip):
            return chain(conn, tip, actor, action, target, detail, source)

    def audit_entries(self, *, last: int | None = None, raw: bool = False) -> list[dict[str, Any]]:
        columns = "id, at, actor, action, target, detail, source, prev_hash, hash"
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
