"""Users, API tokens and sign-in attempts in PostgreSQL (``command.security.auth`` decides; this only stores).
Every change is audited in its own transaction, holding the audit tip."""
from __future__ import annotations

from typing import Any

from command.errors import StoreError
from command.store._records import utc_now
from command.store.postgres_audit import chain, chained

_USER = "SELECT name, role, pw_hash, disabled, created_at, last_login FROM users"


class PostgresAccounts:
    def __init__(self, db: Any) -> None:
        self.db = db

    def add_user(self, name: str, role: str, pw_hash: str, *, actor: str, source: str) -> None:
        try:
            with chained(self.db) as (conn, tip):
                conn.execute("INSERT INTO users (name, role, pw_hash, created_at) VALUES (%s, %s, %s, %s)",
                             (name, role, pw_hash, utc_now()))
                chain(conn, tip, actor, "users.add", name, {"role": role}, source)
        except self.db.errors.IntegrityError:
            raise StoreError(f"user {name!r} already exists (or role {role!r} is not a role)") from None

    def add_first_user(self, name: str, role: str, pw_hash: str, *, actor: str, source: str) -> bool:
        """The tip's lock makes 'no user yet' and the insert one step for every server."""
        with chained(self.db) as (conn, tip):
            if conn.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                return False
            conn.execute("INSERT INTO users (name, role, pw_hash, created_at) VALUES (%s, %s, %s, %s)",
                         (name, role, pw_hash, utc_now()))
            chain(conn, tip, actor, "users.add", name, {"role": role, "first": True}, source)
            return True

    def user(self, name: str) -> dict[str, Any] | None:
        return self.db.row(_USER + " WHERE name = %s", (name,))

    def users(self) -> list[dict[str, Any]]:
        return self.db.rows(_USER + " ORDER BY n")

    def update_user(self, name: str, *, actor: str, source: str, action: str, pw_hash: str | None = None,
                    disabled: bool | None = None, last_login: str | None = None) -> bool:
        with chained(self.db) as (conn, tip):
            cur = conn.execute(
                "UPDATE users SET pw_hash = coalesce(%s, pw_hash), disabled = coalesce(%s, disabled),"
                " last_login = coalesce(%s, last_login) WHERE name = %s",
                (pw_hash, None if disabled is None else int(disabled), last_login, name))
            if cur.rowcount != 1:
                return False
            detail = {} if disabled is None else {"disabled": bool(disabled)}
            chain(conn, tip, actor, action, name, detail, source)
            return True

    def record_attempt(self, name: str, source: str, *, ok: bool, at: float) -> None:
        with chained(self.db) as (conn, tip):
            conn.execute("INSERT INTO login_attempts (name, source, at, ok) VALUES (%s, %s, %s, %s)",
                         (name, source, at, int(ok)))
            chain(conn, tip, name, "auth.signin" if ok else "auth.signin_refused", name, {}, source)

    def recent_failures(self, *, name: str | None = None, source: str | None = None, since: float) -> list[float]:
        col, val = ("name", name) if name is not None else ("source", source)
        with self.db.tx() as conn:
            last_ok = conn.execute(f"SELECT max(at) AS t FROM login_attempts WHERE {col} = %s AND ok = 1",
                                   (val,)).fetchone()["t"]
            floor = max(since, last_ok or since)
            rows = conn.execute(f"SELECT at FROM login_attempts WHERE {col} = %s AND ok = 0 AND at > %s ORDER BY at",
                                (val, floor)).fetchall()
        return [r["at"] for r in rows]

    def put_token(self, system: str, role: str, token_sha256: str, *, actor: str, source: str) -> None:
        with chained(self.db) as (conn, tip):
            conn.execute(
                "INSERT INTO tokens (system, role, token_sha256, created_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (system) DO UPDATE SET role = excluded.role, token_sha256 = excluded.token_sha256,"
                " created_at = excluded.created_at, revoked_at = NULL", (system, role, token_sha256, utc_now()))
            chain(conn, tip, actor, "tokens.issue", system, {"role": role}, source)

    def token_by_hash(self, token_sha256: str) -> dict[str, Any] | None:
        return self.db.row("SELECT system, role, token_sha256, created_at, revoked_at FROM tokens"
                           " WHERE token_sha256 = %s", (token_sha256,))

    def revoke_token(self, system: str, *, actor: str, source: str) -> bool:
        with chained(self.db) as (conn, tip):
            cur = conn.execute("UPDATE tokens SET revoked_at = %s WHERE system = %s AND revoked_at IS NULL",
                               (utc_now(), system))
            if cur.rowcount != 1:
                return False
            chain(conn, tip, actor, "tokens.revoke", system, {}, source)
            return True

    def tokens(self) -> list[dict[str, Any]]:
        return self.db.rows("SELECT system, role, created_at, revoked_at FROM tokens ORDER BY system")
