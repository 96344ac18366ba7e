"""The door's state in SQLite: throttle counters, server-side sessions, and the rows the audit vouches for
(``command.security`` decides; this only stores). Sign-in attempts and session changes are audited."""
from __future__ import annotations

from typing import Any

from command.security.audit import digests_of
from command.store.sqlite_audit import chain


class SQLiteSecurity:
    def __init__(self, db: Any) -> None:
        self.db = db

    # -- throttle ---------------------------------------------------------------------------------------
    def record_signin(self, name: str, source: str, *, ok: bool, at: float, keys: list[tuple[str, str]]) -> None:
        """A sign-in attempt: one throttle row per key it was judged by, and its audit entry."""
        with self.db.tx() as conn:
            conn.executemany("INSERT INTO throttle (kind, key, at, ok) VALUES (?, ?, ?, ?)",
                             [(k, v, at, int(ok)) for k, v in keys])
            chain(self.db, conn, name, "auth.signin" if ok else "auth.signin_refused", name,
                  {"by": sorted(k for k, _ in keys)}, source)

    def record_token_refusal(self, source: str, *, at: float, keys: list[tuple[str, str]]) -> None:
        with self.db.tx() as conn:
            conn.executemany("INSERT INTO throttle (kind, key, at, ok) VALUES (?, ?, ?, 0)",
                             [(k, v, at) for k, v in keys])
            chain(self.db, conn, "token", "auth.token_refused", source, {}, source)

    def throttle_failures(self, kind: str, key: str, *, since: float) -> list[float]:
        conn = self.db.conn()
        last_ok = conn.execute("SELECT max(at) FROM throttle WHERE kind = ? AND key = ? AND ok = 1",
                               (kind, key)).fetchone()[0]
        floor = max(since, last_ok or since)
        rows = conn.execute("SELECT at FROM throttle WHERE kind = ? AND key = ? AND ok = 0 AND at > ? ORDER BY at",
                            (kind, key, floor))
        return [r[0] for r in rows]

    # -- sessions ---------------------------------------------------------------------------------------
    def session_start(self, id_sha256: str, user: str, *, source: str, at: float) -> None:
        with self.db.tx() as conn:
            conn.execute("INSERT INTO sessions (id_sha256, username, source, started_at, seen_at) VALUES (?, ?, ?, ?, ?)",
                         (id_sha256, user, source, at, at))
            chain(self.db, conn, user, "sessions.start", user, {"session": id_sha256[:12]}, source)

    def session(self, id_sha256: str) -> dict[str, Any] | None:
        row = self.db.conn().execute("SELECT * FROM sessions WHERE id_sha256 = ?", (id_sha256,)).fetchone()
        return dict(row) if row else None

    def session_touch(self, id_sha256: str, *, at: float) -> None:
        self.db.write_one("UPDATE sessions SET seen_at = ? WHERE id_sha256 = ? AND ended_at IS NULL",
                          (at, id_sha256))

    def session_end(self, id_sha256: str, *, at: float, why: str) -> None:
        with self.db.tx() as conn:
            row = conn.execute("UPDATE sessions SET ended_at = ?, why = ? WHERE id_sha256 = ? AND ended_at IS NULL"
                               " RETURNING username, source", (at, why, id_sha256)).fetchone()
            if row is not None:
                chain(self.db, conn, row["username"], "sessions.end", row["username"],
                      {"session": id_sha256[:12], "why": why}, row["source"] or "local")

    def sessions_end_user(self, user: str, *, at: float, why: str) -> int:
        with self.db.tx() as conn:
            return end_sessions_of(self.db, conn, user, at=at, why=why, actor=user, source="local")

    def sessions_of(self, user: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.conn().execute(
            "SELECT * FROM sessions WHERE username = ? ORDER BY started_at", (user,))]

    # -- what the audit vouches for ---------------------------------------------------------------------
    def audited_rows(self) -> dict[str, dict[str, str]]:
        """{table: {key: row digest}} of every row of users, tokens, alerts and deliveries as stored now."""
        conn = self.db.conn()
        return {"users": digests_of("users", (dict(r) for r in conn.execute("SELECT * FROM users")), "name"),
                "tokens": digests_of("tokens", (dict(r) for r in conn.execute("SELECT * FROM tokens")), "system"),
                "alerts": digests_of("alerts", (dict(r) for r in conn.execute("SELECT * FROM alerts")), "identifier"),
                "deliveries": digests_of("deliveries", (dict(r) for r in conn.execute("SELECT * FROM deliveries")),
                                         "id")}


def end_sessions_of(db: Any, conn: Any, user: str, *, at: float, why: str, actor: str, source: str) -> int:
    """End every live session of ``user`` inside the caller's transaction (audited once); how many."""
    import time
    cur = conn.execute("UPDATE sessions SET ended_at = ?, why = ? WHERE username = ? AND ended_at IS NULL",
                       (at if at is not None else time.time(), why, user))
    if cur.rowcount:
        chain(db, conn, actor, "sessions.end_all", user, {"why": why, "count": cur.rowcount}, source)
    return cur.rowcount
