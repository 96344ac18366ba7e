"""Schema 7: the stored trainer role. A store of version 6, with users, tokens and a keyed audit chain written by
the product, is upgraded in place on both backends: every user and token stays (same columns, same order), the
audit chain still verifies (each row's digest is what its entry recorded), and then a trainer user and a trainer
token can be made while the CHECK still refuses a role that is no role."""
from __future__ import annotations

import secrets
import sqlite3

import pytest

from command.errors import PermissionDenied
from command.security.audit import Anchor, AuditLog
from command.security.auth import Tokens, Users
from command.store.schema import SCHEMA_VERSION

PASSWORD = "a long enough pass phrase 1"


def _seed_version_6(accounts) -> None:
    """What a version-6 store holds: users and tokens written through the product's own accounts code."""
    for name, role in (("王五", "officer"), ("李四", "commander"), ("admin", "admin"), ("赵六", "viewer")):
        accounts.add_user(name, role, "argon2-hash-" + name, actor="cli", source="cli",
                          scope="440100" if name == "王五" else "440000")
    accounts.put_token("119", "officer", "sha-119", actor="cli", source="cli", expires_at="2030-01-01T00:00:00+00:00")
    accounts.put_token("120", "viewer", "sha-120", actor="cli", source="cli", scope="440106")
    accounts.revoke_token("120", actor="cli", source="cli")


def _check_upgraded(store, users_before, tokens_before, raw_sql, integrity_error) -> None:
    assert store.users() == users_before and store.tokens() == tokens_before
    report = AuditLog(store).verify()
    assert report.ok, report.reason
    Users(store).add("教员", "trainer", PASSWORD)
    token = Tokens(store).issue("drill-desk", role="trainer")
    assert store.user("教员")["role"] == "trainer"
    assert Tokens(store).verify(token, source="10.0.0.1").role == "trainer"
    report = AuditLog(store).verify()
    assert report.ok, report.reason
    with pytest.raises(integrity_error):                    # the CHECK is still a CHECK
        raw_sql("INSERT INTO users (name, role, pw_hash, created_at) VALUES ('x', 'root', 'h', 't')")
    with pytest.raises(integrity_error):                    # a token is still never an admin
        raw_sql("INSERT INTO tokens (system, role, token_sha256, created_at) VALUES ('y', 'admin', 'h2', 't')")
    with pytest.raises(integrity_error):                    # the token hash's unique index came back
        raw_sql("INSERT INTO tokens (system, role, token_sha256, created_at) VALUES ('z', 'viewer', 'sha-119', 't')")


@pytest.mark.sqlite_only
def test_a_version_6_sqlite_file_keeps_its_users_tokens_and_audit_chain_and_stores_trainers(tmp_path):
    from command.store.sqlite import SQLiteDatabase, Store
    from command.store.sqlite_accounts import SQLiteAccounts
    path = tmp_path / "v6.db"
    db = SQLiteDatabase(path, target=6)
    accounts = SQLiteAccounts(db)
    _seed_version_6(accounts)
    with pytest.raises(sqlite3.IntegrityError):              # version 6 knows no trainer
        db.conn().execute("INSERT INTO users (name, role, pw_hash, created_at) VALUES ('t', 'trainer', 'h', 't')")
    users_before, tokens_before = accounts.users(), accounts.tokens()
    db.close()
    store = Store(path)
    try:
        conn = store._conn()
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        assert [u["name"] for u in users_before] == ["王五", "李四", "admin", "赵六"]   # rowid order kept
        assert users_before[0]["scope"] == "440100"
        assert [(t["system"], t["role"], bool(t["revoked_at"])) for t in tokens_before] == [
            ("119", "officer", False), ("120", "viewer", True)]
        assert "trainer" in conn.execute("SELECT sql FROM sqlite_master WHERE name = 'tokens'").fetchone()[0]
        _check_upgraded(store, users_before, tokens_before, lambda sql: conn.execute(sql), sqlite3.IntegrityError)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        store.close()


@pytest.mark.sqlite_only
def test_a_version_6_sqlite_file_upgraded_once_holds_the_same_rows_as_before(tmp_path):
    """The rebuild copies values untouched: every column of every users/tokens row reads back identical."""
    from command.store.sqlite import SQLiteDatabase, Store
    from command.store.sqlite_accounts import SQLiteAccounts
    path = tmp_path / "v6.db"
    db = SQLiteDatabase(path, target=6)
    _seed_version_6(SQLiteAccounts(db))
    raw_before = {t: [tuple(r) for r in db.conn().execute(f"SELECT rowid, * FROM {t} ORDER BY rowid")]
                  for t in ("users", "tokens")}
    db.close()
    with Store(path) as store:
        raw_after = {t: [tuple(r) for r in store._conn().execute(f"SELECT rowid, * FROM {t} ORDER BY rowid")]
                     for t in ("users", "tokens")}
        assert raw_after == raw_before
        assert AuditLog(store).verify().ok


@pytest.mark.postgres_only
def test_a_version_6_postgresql_database_keeps_its_users_tokens_and_audit_chain_and_stores_trainers(tmp_path):
    import psycopg
    import helpers_store
    from command.store.postgres import PostgresDatabase, PostgresStore
    from command.store.postgres_accounts import PostgresAccounts
    url = helpers_store.pg_slots().scratch("roles")
    key, anchor = secrets.token_bytes(32), Anchor(tmp_path / "anchor")
    try:
        db = PostgresDatabase(url, target=6, audit_key=key, anchor=anchor)
        accounts = PostgresAccounts(db)
        _seed_version_6(accounts)
        with pytest.raises(psycopg.IntegrityError), db.tx() as conn:
            conn.execute("INSERT INTO tokens (system, role, token_sha256, created_at) VALUES ('t', 'trainer', 'h', 't')")
        users_before, tokens_before = accounts.users(), accounts.tokens()
        db.close()
        store = PostgresStore(url, audit_key=key, anchor=anchor)
        try:
            assert store.db.row("SELECT version FROM schema_version")["version"] == SCHEMA_VERSION
            assert [u["name"] for u in users_before] == ["王五", "李四", "admin", "赵六"]

            def raw_sql(sql: str) -> None:
                with store.db.tx() as conn:
                    conn.execute(sql)
            _check_upgraded(store, users_before, tokens_before, raw_sql, psycopg.IntegrityError)
        finally:
            store.close()
    finally:
        helpers_store.pg_slots().drop_scratch(url)


def test_a_trainer_is_a_role_for_users_and_tokens_but_root_is_not(store_backend, new_store, tmp_path):
    store = new_store(tmp_path / "yzt.db")
    Users(store).add("教员", "trainer", PASSWORD)
    assert Users(store).authenticate("教员", PASSWORD, source="10.0.0.2").role == "trainer"
    assert Tokens(store).verify(Tokens(store).issue("drill", role="trainer"), source="10.0.0.2").role == "trainer"
    with pytest.raises(PermissionDenied, match="role 'root' refused"):
        Users(store).add("某人", "root", PASSWORD)
    with pytest.raises(PermissionDenied, match="role 'admin' refused"):
        Tokens(store).issue("110", role="admin")
