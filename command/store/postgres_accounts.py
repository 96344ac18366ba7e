"""Users, API tokens and sign-in attempts in PostgreSQL (``command.security.auth`` decides; this only stores).
Every change is audited in its own transaction, holding the audit tip."""
from __future__ import annotations

from typing import Any

from command.errors import StoreError
from command.store._records import utc_now
from command.security.audit import row_digest
from command.store.postgres_audit import chain, chained
from command.store.postgres_security import end_sessions_of

_USER = "SELECT name, role, scope, pw_hash, disabled, created_at, last_login FROM users"


def _vouch(conn: Any, table: str, key_col: str, key: str) -> dict[str, Any]:
    row = conn.execute(f"SELECT * FROM {table} WHERE {key_col} = %s", (key,)).fetchone()
    return {"table": table, "key": str(key), "row": row_digest(table, dict(row)) if row else None}


class PostgresAccounts:
    def __init__(self, db: Any) -> None:
        self.db = db

    def add_user(self, name: str, role: str, pw_hash: str, *, actor: str, source: str,
                 scope: str = "440000") -> None:
        try:
            with chained(self.db) as (conn, tip):
                conn.execute("INSERT INTO users (name, role, pw_hash, created_at, scope) VALUES (%s, %s, %s, %s, %s)",
                             (name, role, pw_hash, utc_now(), scope))
                chain(conn, tip, actor, "users.add", name,
                      {"role": role, "scope": scope, **_vouch(conn, "users", "name", name)}, source)
        except self.db.errors.IntegrityError:
            raise StoreError(f"user {name!r} already exists (or role {role!r} is not a role)") from None

    def add_first_user(self, name: str, role: str, pw_hash: str, *, actor: str, source: str) -> bool:
        """The tip's lock makes 'no user yet' and the insert one step for every server."""
        with chained(self.db) as (conn, tip):
            if conn.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                return False
            conn.execute("INSERT INTO users (name, role, pw_hash, created_at) VALUES (%s, %s, %s, %s)",
                         (name, role, pw_hash, utc_now()))
            chain(conn, tip, actor, "users.add", name,
                  {"role": role, "first": True, **_vouch(conn, "users", "name", name)}, source)
            return True

    def user(self, name: str) -> dict[str, Any] | None:
        return self.db.row(_USER + " WHERE name = %s", (name,))

    def users(self) -> list[dict[str, Any]]:
        return self.db.rows(_USER + " ORDER BY n")

    def update_user(self, name: str, *, actor: str, source: str, action: str, pw_hash: str | None = None,
                    disabled: bool | None = None, last_login: str | None = None, role: str | None = None,
                    scope: str | None = None, end_sessions: bool = True) -> bool:
        """See sqlite_accounts: a password, role, scope or disabled change ends the user's sessions."""
        try:
            with chained(self.db) as (conn, tip):
                cur = conn.execute(
                    "UPDATE users SET pw_hash = coalesce(%s, pw_hash), disabled = coalesce(%s, disabled),"
                    " last_login = coalesce(%s, last_login), role = coalesce(%s, role), scope = coalesce(%s, scope)"
                    " WHERE name = %s",
                    (pw_hash, None if disabled is None else int(disabled), last_login, role, scope, name))
                if cur.rowcount != 1:
                    return False
                detail: dict[str, Any] = {} if disabled is None else {"disabled": bool(disabled)}
                detail.update({k: v for k, v in (("role", role), ("scope", scope)) if v is not None})
                chain(conn, tip, actor, action, name, {**detail, **_vouch(conn, "users", "name", name)}, source)
                if end_sessions and (pw_hash or disabled or role or scope):
                    end_sessions_of(conn, tip, name, at=None, why=action, actor=actor, source=source)
                return True
        except self.db.errors.IntegrityError:
            raise StoreError(f"user {name!r}: role {role!r} is not a role") from None

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

    def put_token(self, system: str, role: str, token_sha256: str, *, actor: str, source: str,
                  scope: str = "440000", expires_at: str | None = None) -> None:
        with chained(self.db) as (conn, tip):
            conn.execute(
                "INSERT INTO tokens (system, role, token_sha256, created_at, scope, expires_at)"
                " VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (system) DO UPDATE SET role = excluded.role, token_sha256 = excluded.token_sha256,"
                " created_at = excluded.created_at, revoked_at = NULL, scope = excluded.scope,"
                " expires_at = excluded.expires_at", (system, role, token_sha256, utc_now(), scope, expires_at))
            chain(conn, tip, actor, "tokens.issue", system,
                  {"role": role, "scope": scope, "expires_at": expires_at,
                   **_vouch(conn, "tokens", "system", system)}, source)

    def token_by_hash(self, token_sha256: str) -> dict[str, Any] | None:
        return self.db.row("SELECT system, role, scope, token_sha256, created_at, expires_at, revoked_at FROM tokens"
                           " WHERE token_sha256 = %s", (token_sha256,))

    def revoke_token(self, system: str, *, actor: str, source: str) -> bool:
        with chained(self.db) as (conn, tip):
            cur = conn.execute("UPDATE tokens SET revoked_at = %s WHERE system = %s AND revoked_at IS NULL",
                               (utc_now(), system))
            if cur.rowcount != 1:
                return False
            chain(conn, tip, actor, "tokens.revoke", system, _vouch(conn, "tokens", "system", system), source)
            return True

    def tokens(self) -> list[dict[str, Any]]:
        return self.db.rows("SELECT system, role, scope, created_at, expires_at, revoked_at FROM tokens ORDER BY system")
