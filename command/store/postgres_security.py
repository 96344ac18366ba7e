"""The door's state in PostgreSQL: throttle counters, server-side sessions, the rows the audit vouches for
(the same as ``sqlite_security``; every audited write holds the audit tip)."""
from __future__ import annotations

import time
from typing import Any

from command.security.audit import digests_of
from command.store.postgres_audit import chain, chained


class PostgresSecurity:
    def __init__(self, db: Any) -> None:
        self.db = db

    def record_signin(self, name: str, source: str, *, ok: bool, at: float, keys: list[tuple[str, str]]) -> None:
        with chained(self.db) as (conn, tip):
            for k, v in keys:
                conn.execute("INSERT INTO throttle (kind, key, at, ok) VALUES (%s, %s, %s, %s)", (k, v, at, int(ok)))
            chain(conn, tip, name, "auth.signin" if ok else "auth.signin_refused", name,
                  {"by": sorted(k for k, _ in keys)}, source)

    def record_token_refusal(self, source: str, *, at: float, keys: list[tuple[str, str]]) -> None:
        with chained(self.db) as (conn, tip):
            for k, v in keys:
                conn.execute("INSERT INTO throttle (kind, key, at, ok) VALUES (%s, %s, %s, 0)", (k, v, at))
            chain(conn, tip, "token", "auth.token_refused", source, {}, source)

    def throttle_failures(self, kind: str, key: str, *, since: float) -> list[float]:
        with self.db.tx() as conn:
            last_ok = conn.execute("SELECT max(at) AS t FROM throttle WHERE kind = %s AND key = %s AND ok = 1",
                                   (kind, key)).fetchone()["t"]
            floor = max(since, last_ok or since)
            rows = conn.execute("SELECT at FROM throttle WHERE kind = %s AND key = %s AND ok = 0 AND at > %s"
                                " ORDER BY at", (kind, key, floor)).fetchall()
        return [r["at"] for r in rows]

    def session_start(self, id_sha256: str, user: str, *, source: str, at: float) -> None:
        with chained(self.db) as (conn, tip):
            conn.execute("INSERT INTO sessions (id_sha256, username, source, started_at, seen_at)"
                         " VALUES (%s, %s, %s, %s, %s)", (id_sha256, user, source, at, at))
            chain(conn, tip, user, "sessions.start", user, {"session": id_sha256[:12]}, source)

    def session(self, id_sha256: str) -> dict[str, Any] | None:
        return self.db.row("SELECT * FROM sessions WHERE id_sha256 = %s", (id_sha256,))

    def session_touch(self, id_sha256: str, *, at: float) -> None:
        with self.db.tx(fsync=False) as conn:
            conn.execute("UPDATE sessions SET seen_at = %s WHERE id_sha256 = %s AND ended_at IS NULL", (at, id_sha256))

    def session_end(self, id_sha256: str, *, at: float, why: str) -> None:
        with chained(self.db) as (conn, tip):
            row = conn.execute("UPDATE sessions SET ended_at = %s, why = %s WHERE id_sha256 = %s AND ended_at IS NULL"
                               " RETURNING username, source", (at, why, id_sha256)).fetchone()
            if row is not None:
                chain(conn, tip, row["username"], "sessions.end", row["username"],
                      {"session": id_sha256[:12], "why": why}, row["source"] or "local")

    def sessions_end_user(self, user: str, *, at: float, why: str) -> int:
        with chained(self.db) as (conn, tip):
            return end_sessions_of(conn, tip, user, at=at, why=why, actor=user, source="local")

    def sessions_of(self, user: str) -> list[dict[str, Any]]:
        return self.db.rows("SELECT * FROM sessions WHERE username = %s ORDER BY started_at", (user,))

    def audited_rows(self) -> dict[str, dict[str, str]]:
        with self.db.tx() as conn:
            return {t: digests_of(t, conn.execute(f"SELECT * FROM {t}").fetchall(), k)
                    for t, k in (("users", "name"), ("tokens", "system"), ("alerts", "identifier"),
                                 ("deliveries", "id"))}


def end_sessions_of(conn: Any, tip: dict[str, Any], user: str, *, at: float | None, why: str, actor: str,
                    source: str) -> int:
    cur = conn.execute("UPDATE sessions SET ended_at = %s, why = %s WHERE username = %s AND ended_at IS NULL",
                       (at if at is not None else time.time(), why, user))
    if cur.rowcount:
        chain(conn, tip, actor, "sessions.end_all", user, {"why": why, "count": cur.rowcount}, source)
    return cur.rowcount
