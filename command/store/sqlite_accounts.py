"""Users, API tokens and sign-in attempts in SQLite (``command.security.auth`` decides; this only stores).
Every change is audited in its own transaction."""
from __future__ import annotations

import sqlite3
from typing import Any

from command.errors import StoreError
from command.store._records import utc_now
from command.security.audit import row_digest
from command.store.sqlite_audit import chain
from command.store.sqlite_security import end_sessions_of


def _vouch(conn: sqlite3.Connection, table: str, key_col: str, key: str) -> dict[str, Any]:
    """The audit detail naming the digest of a row as this transaction leaves it (None: deleted)."""
    row = conn.execute(f"SELECT * FROM {table} WHERE {key_col} = ?", (key,)).fetchone()
    return {"table": table, "key": str(key), "row": row_digest(table, dict(row)) if row else None}


class SQLiteAccounts:
    def __init__(self, db: Any) -> None:
        self.db = db

    def add_user(self, name: str, role: str, pw_hash: str, *, actor: str, source: str,
                 scope: str = "440000") -> None:
        """A new user (acting for ``scope``) and its audit entry; refuses a name already taken."""
        try:
            with self.db.tx() as conn:
                conn.execute("INSERT INTO users (name, role, pw_hash, created_at, scope) VALUES (?, ?, ?, ?, ?)",
                             (name, role, pw_hash, utc_now(), scope))
                chain(self.db, conn, actor, "users.add", name,
                      {"role": role, "scope": scope, **_vouch(conn, "users", "name", name)}, source)
        except sqlite3.IntegrityError:
            raise StoreError(f"user {name!r} already exists (or role {role!r} is not a role)") from None

    def add_first_user(self, name: str, role: str, pw_hash: str, *, actor: str, source: str) -> bool:
        """Add the user only when there is no user at all (one transaction); True when added."""
        with self.db.tx() as conn:
            if conn.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                return False
            conn.execute("INSERT INTO users (name, role, pw_hash, created_at) VALUES (?, ?, ?, ?)",
                         (name, role, pw_hash, utc_now()))
            chain(self.db, conn, actor, "users.add", name,
                  {"role": role, "first": True, **_vouch(conn, "users", "name", name)}, source)
            return True

    def user(self, name: str) -> dict[str, Any] | None:
        row = self.db.conn().execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        return dict(row) if row else None

    def users(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.conn().execute("SELECT * FROM users ORDER BY rowid")]

    def update_user(self, name: str, *, actor: str, source: str, action: str, pw_hash: str | None = None,
                    disabled: bool | None = None, last_login: str | None = None, role: str | None = None,
                    scope: str | None = None, end_sessions: bool = True) -> bool:
        """Change a user's hash, disabled flag, last sign-in, role or scope, audited as ``action``; a change
        of password, role, scope or disabled ends the user's sessions in the same transaction (unless
        ``end_sessions`` is False: a rehash of the same password). False: no such user."""
        with self.db.tx() as conn:
            try:
                cur = conn.execute(
                    "UPDATE users SET pw_hash = coalesce(?, pw_hash), disabled = coalesce(?, disabled),"
                    " last_login = coalesce(?, last_login), role = coalesce(?, role), scope = coalesce(?, scope)"
                    " WHERE name = ?",
                    (pw_hash, None if disabled is None else int(disabled), last_login, role, scope, name))
            except sqlite3.IntegrityError:
                raise StoreError(f"user {name!r}: role {role!r} is not a role") from None
            if cur.rowcount != 1:
                return False
            detail: dict[str, Any] = {} if disabled is None else {"disabled": bool(disabled)}
            detail.update({k: v for k, v in (("role", role), ("scope", scope)) if v is not None})
            chain(self.db, conn, actor, action, name, {**detail, **_vouch(conn, "users", "name", name)}, source)
            if end_sessions and (pw_hash or disabled or role or scope):
                end_sessions_of(self.db, conn, name, at=None, why=action, actor=actor, source=source)
            return True

    def record_attempt(self, name: str, source: str, *, ok: bool, at: float) -> None:
        """A sign-in attempt (kept for throttling) and its audit entry."""
        with self.db.tx() as conn:
            conn.execute("INSERT INTO login_attempts (name, source, at, ok) VALUES (?, ?, ?, ?)",
                         (name, source, at, int(ok)))
            chain(self.db, conn, name, "auth.signin" if ok else "auth.signin_refused", name, {}, source)

    def recent_failures(self, *, name: str | None = None, source: str | None = None, since: float) -> list[float]:
        """Times of failed attempts after ``since`` and after the last success, by name or by source."""
        col, val = ("name", name) if name is not None else ("source", source)
        last_ok = self.db.conn().execute(
            f"SELECT max(at) FROM login_attempts WHERE {col} = ? AND ok = 1", (val,)).fetchone()[0]
        floor = max(since, last_ok or since)
        rows = self.db.conn().execute(
            f"SELECT at FROM login_attempts WHERE {col} = ? AND ok = 0 AND at > ? ORDER BY at", (val, floor))
        return [r[0] for r in rows]

    def put_token(self, system: str, role: str, token_sha256: str, *, actor: str, source: str,
                  scope: str = "440000", expires_at: str | None = None) -> None:
        """Issue (or replace) a system's token: only its hash is kept, with its scope and expiry."""
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO tokens (system, role, token_sha256, created_at, scope, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (system) DO UPDATE SET role = excluded.role, token_sha256 = excluded.token_sha256,"
                " created_at = excluded.created_at, revoked_at = NULL, scope = excluded.scope,"
                " expires_at = excluded.expires_at", (system, role, token_sha256, utc_now(), scope, expires_at))
            chain(self.db, conn, actor, "tokens.issue", system,
                  {"role": role, "scope": scope, "expires_at": expires_at,
                   **_vouch(conn, "tokens", "system", system)}, source)

    def token_by_hash(self, token_sha256: str) -> dict[str, Any] | None:
        row = self.db.conn().execute("SELECT * FROM tokens WHERE token_sha256 = ?", (token_sha256,)).fetchone()
        return dict(row) if row else None

    def revoke_token(self, system: str, *, actor: str, source: str) -> bool:
        with self.db.tx() as conn:
            cur = conn.execute("UPDATE tokens SET revoked_at = ? WHERE system = ? AND revoked_at IS NULL",
                               (utc_now(), system))
            if cur.rowcount != 1:
                return False
            chain(self.db, conn, actor, "tokens.revoke", system, _vouch(conn, "tokens", "system", system), source)
            return True

    def tokens(self) -> list[dict[str, Any]]:
        """Systems with their role and dates (never the token)."""
        return [dict(r) for r in self.db.conn().execute(
            "SELECT system, role, scope, created_at, expires_at, revoked_at FROM tokens ORDER BY system")]
