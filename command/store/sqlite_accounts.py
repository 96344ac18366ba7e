"""Users, API tokens and sign-in attempts in SQLite (``command.security.auth`` decides; this only stores).
Every change is audited in its own transaction."""
from __future__ import annotations

import sqlite3
from typing import Any

from command.errors import StoreError
from command.store._records import utc_now
from command.store.sqlite_audit import chain


class SQLiteAccounts:
    def __init__(self, db: Any) -> None:
        self.db = db

    def add_user(self, name: str, role: str, pw_hash: str, *, actor: str, source: str) -> None:
        """A new user and its audit entry; refuses a name already taken."""
        try:
            with self.db.tx() as conn:
                conn.execute("INSERT INTO users (name, role, pw_hash, created_at) VALUES (?, ?, ?, ?)",
                             (name, role, pw_hash, utc_now()))
                chain(conn, actor, "users.add", name, {"role": role}, source)
        except sqlite3.IntegrityError:
            raise StoreError(f"user {name!r} already exists (or role {role!r} is not a role)") from None

    def add_first_user(self, name: str, role: str, pw_hash: str, *, actor: str, source: str) -> bool:
        """Add the user only when there is no user at all (one transaction); True when added."""
        with self.db.tx() as conn:
            if conn.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                return False
            conn.execute("INSERT INTO users (name, role, pw_hash, created_at) VALUES (?, ?, ?, ?)",
                         (name, role, pw_hash, utc_now()))
            chain(conn, actor, "users.add", name, {"role": role, "first": True}, source)
            return True

    def user(self, name: str) -> dict[str, Any] | None:
        row = self.db.conn().execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        return dict(row) if row else None

    def users(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.conn().execute("SELECT * FROM users ORDER BY rowid")]

    def update_user(self, name: str, *, actor: str, source: str, action: str, pw_hash: str | None = None,
                    disabled: bool | None = None, last_login: str | None = None) -> bool:
        """Change a user's hash, disabled flag or last sign-in, audited as ``action``; False: no such user."""
        with self.db.tx() as conn:
            cur = conn.execute(
                "UPDATE users SET pw_hash = coalesce(?, pw_hash), disabled = coalesce(?, disabled),"
                " last_login = coalesce(?, last_login) WHERE name = ?",
                (pw_hash, None if disabled is None else int(disabled), last_login, name))
            if cur.rowcount != 1:
                return False
            detail = {} if disabled is None else {"disabled": bool(disabled)}
            chain(conn, actor, action, name, detail, source)
            return True

    def record_attempt(self, name: str, source: str, *, ok: bool, at: float) -> None:
        """A sign-in attempt (kept for throttling) and its audit entry."""
        with self.db.tx() as conn:
            conn.execute("INSERT INTO login_attempts (name, source, at, ok) VALUES (?, ?, ?, ?)",
                         (name, source, at, int(ok)))
            chain(conn, name, "auth.signin" if ok else "auth.signin_refused", name, {}, source)

    def recent_failures(self, *, name: str | None = None, source: str | None = None, since: float) -> list[float]:
        """Times of failed attempts after ``since`` and after the last success, by name or by source."""
        col, val = ("name", name) if name is not None else ("source", source)
        last_ok = self.db.conn().execute(
            f"SELECT max(at) FROM login_attempts WHERE {col} = ? AND ok = 1", (val,)).fetchone()[0]
        floor = max(since, last_ok or since)
        rows = self.db.conn().execute(
            f"SELECT at FROM login_attempts WHERE {col} = ? AND ok = 0 AND at > ? ORDER BY at", (val, floor))
        return [r[0] for r in rows]

    def put_token(self, system: str, role: str, token_sha256: str, *, actor: str, source: str) -> None:
        """Issue (or replace) a system's token: only its hash is kept."""
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO tokens (system, role, token_sha256, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (system) DO UPDATE SET role = excluded.role, token_sha256 = excluded.token_sha256,"
                " created_at = excluded.created_at, revoked_at = NULL", (system, role, token_sha256, utc_now()))
            chain(conn, actor, "tokens.issue", system, {"role": role}, source)

    def token_by_hash(self, token_sha256: str) -> dict[str, Any] | None:
        row = self.db.conn().execute("SELECT * FROM tokens WHERE token_sha256 = ?", (token_sha256,)).fetchone()
        return dict(row) if row else None

    def revoke_token(self, system: str, *, actor: str, source: str) -> bool:
        with self.db.tx() as conn:
            cur = conn.execute("UPDATE tokens SET revoked_at = ? WHERE system = ? AND revoked_at IS NULL",
                               (utc_now(), system))
            if cur.rowcount != 1:
                return False
            chain(conn, actor, "tokens.revoke", system, {}, source)
            return True

    def tokens(self) -> list[dict[str, Any]]:
        """Systems with their role and dates (never the token)."""
        return [dict(r) for r in self.db.conn().execute(
            "SELECT system, role, created_at, revoked_at FROM tokens ORDER BY system")]
