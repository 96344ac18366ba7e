"""Sign-in and permissions: salted argon2 hashes, throttling, disabled users, hashed tokens, the role matrix."""
from __future__ import annotations

import sqlite3

import pytest
import typer

from command.cli import output
from command.security.auth import (ACTIONS, MAX_FAILURES, REFUSED, ROLES, WINDOW_S, Principal, Tokens, Users,
                          local_operator, require, role_at_least)
from command.cli.admin import admin_app, audit_app, tokens_app, users_app
from command.errors import PermissionDenied
from command.store.sqlite import Store

# The issue's table, written out by hand: who may do what.
EXPECTED = {
    "viewer": {"view"},
    "officer": {"view", "incident.report", "incident.update", "incident.note", "task.set", "task.done",
                "alert.draft"},
    "commander": {"view", "incident.report", "incident.update", "incident.note", "task.set", "task.done",
                  "alert.draft", "alert.send", "alert.approve", "alert.cancel", "incident.close"},
}
EXPECTED["admin"] = EXPECTED["commander"] | {"users.manage", "channels.manage", "layers.import", "exercise.run"}
EXPECTED["trainer"] = {"view", "exercise.run"}      # outside the ranking: runs exercises, takes no response action


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "auth.db")
    yield s
    s.close()


def test_the_permission_matrix_is_the_issues_table():
    assert ROLES == ("viewer", "officer", "commander", "admin")
    assert set(ACTIONS) == EXPECTED["admin"]
    for role in ROLES + ("trainer",):
        p = Principal("某人", role, "user", "10.0.0.1")
        for action in ACTIONS:
            if action in EXPECTED[role]:
                assert require(p, action) is p
            else:
                with pytest.raises(PermissionDenied, match=f"^user 某人 \\(role {role}\\) may not {action}: "
                                                           f"needs {ACTIONS[action]}$"):
                    require(p, action)


def test_require_refuses_no_principal_unknown_actions_and_unknown_roles():
    with pytest.raises(PermissionDenied, match="^sign in first"):
        require(None, "view")
    with pytest.raises(PermissionDenied, match="unknown action"):
        require(Principal("a", "admin"), "everything")
    with pytest.raises(PermissionDenied, match="may not view"):
        require(Principal("a", "root"), "view")
    assert not role_at_least("root", "viewer") and role_at_least("admin", "viewer")
    assert local_operator("cli:me").role == "commander" and local_operator("cli:me").source == "cli"


def test_hashes_are_salted_argon2_and_the_password_is_never_stored(store):
    users = Users(store)
    users.add("甲", "officer", "the same long password")
    users.add("乙", "viewer", "the same long password")
    a, b = store.user("甲")["pw_hash"], store.user("乙")["pw_hash"]
    assert a != b and a.startswith("$argon2id$") and b.startswith("$argon2id$")
    raw = (store.path.read_bytes() + store.path.with_name(store.path.name + "-wal").read_bytes()
           if store.path.with_name(store.path.name + "-wal").exists() else store.path.read_bytes())
    assert b"the same long password" not in raw


def test_right_password_signs_in_wrong_one_is_refused_without_saying_whether_the_name_exists(store):
    users = Users(store, clock=Clock())
    pw = users.add("王五", "officer")
    assert len(pw) >= 20
    me = users.authenticate("王五", pw, source="10.0.0.5")
    assert me == Principal("王五", "officer", "user", "10.0.0.5")
    with pytest.raises(PermissionDenied) as wrong:
        users.authenticate("王五", pw + "x", source="10.0.0.5")
    with pytest.raises(PermissionDenied) as nobody:
        users.authenticate("没有这个人", pw, source="10.0.0.5")
    assert str(wrong.value) == str(nobody.value) == REFUSED
    assert users.list()[0]["last_login"] is not None


def test_short_passwords_bad_names_and_roles_and_duplicates_are_refused(store):
    users = Users(store)
    with pytest.raises(PermissionDenied, match="at least 12 characters"):
        users.add("甲", "officer", "short")
    with pytest.raises(PermissionDenied, match="user name 'a b' refused"):
        users.add("a b", "officer")
    with pytest.raises(PermissionDenied, match="role 'root' refused"):
        users.add("甲", "root")
    users.add("甲", "officer")
    with pytest.raises(PermissionDenied, match="already exists"):
        users.add("甲", "viewer")


def test_throttled_after_five_failures_for_a_name_even_with_the_right_password(store):
    clock = Clock()
    users = Users(store, clock=clock)
    pw = users.add("王五", "officer")
    for i in range(MAX_FAILURES):
        clock.t += 1
        with pytest.raises(PermissionDenied, match=f"^{REFUSED}$"):
            users.authenticate("王五", "wrong password", source=f"10.0.0.{i}")
    clock.t += 1
    with pytest.raises(PermissionDenied, match="too many failed attempts"):
        users.authenticate("王五", pw, source="10.9.9.9")
    clock.t += WINDOW_S
    assert users.authenticate("王五", pw, source="10.9.9.9").name == "王五"


def test_a_password_spray_from_one_source_slows_that_source_not_the_others(store):
    from command.security.auth import Throttled
    from command.security.throttle import RULES
    clock = Clock()
    users = Users(store, clock=clock)
    pw = users.add("王五", "officer")
    for i in range(RULES["source"].free + 1):
        with pytest.raises(PermissionDenied):
            users.authenticate(f"guess{i}", "x" * 12, source="203.0.113.9")
    with pytest.raises(Throttled, match="too many failed attempts"):
        users.authenticate("王五", pw, source="203.0.113.9")
    assert users.authenticate("王五", pw, source="10.0.0.5").role == "officer"   # others still get in
    clock.t += RULES["source"].cap_s
    assert users.authenticate("王五", pw, source="203.0.113.9").role == "officer"  # a delay, never a lockout


def test_a_disabled_user_is_refused_and_a_new_password_replaces_the_old(store):
    users = Users(store)
    pw = users.add("王五", "officer")
    new = users.set_password("王五")
    assert new != pw
    with pytest.raises(PermissionDenied, match=REFUSED):
        users.authenticate("王五", pw, source="cli")
    assert users.authenticate("王五", new, source="cli").name == "王五"
    users.disable("王五")
    with pytest.raises(PermissionDenied, match="disabled"):
        users.authenticate("王五", new, source="cli")
    assert users.list()[0]["disabled"] is True
    with pytest.raises(PermissionDenied, match="no user"):
        users.disable("没有这个人")


def test_ensure_admin_only_on_an_empty_store_and_no_default_password(store, tmp_path):
    users = Users(store)
    pw = users.ensure_admin()
    assert pw and len(pw) >= 20
    assert users.authenticate("admin", pw, source="cli").role == "admin"
    assert users.ensure_admin() is None
    other = Users(Store(tmp_path / "other.db")).ensure_admin()
    assert other and other != pw       # random each time: nothing to guess


def test_tokens_are_shown_once_stored_hashed_revocable(store):
    tokens = Tokens(store, clock=Clock())
    token = tokens.issue("119")
    p = tokens.verify(token, source="10.1.1.9")
    assert p == Principal("119", "officer", "system", "10.1.1.9")
    with sqlite3.connect(store.path) as raw:
        row = raw.execute("SELECT * FROM tokens").fetchone()
    assert token not in row and all(token not in str(v) for v in row)
    again = tokens.issue("119", role="viewer")
    with pytest.raises(PermissionDenied, match="unknown or revoked"):
        tokens.verify(token, source="10.1.1.9")               # the old one stopped working
    assert tokens.verify(again, source="10.1.1.9").role == "viewer"
    tokens.revoke("119")
    with pytest.raises(PermissionDenied, match="unknown or revoked"):
        tokens.verify(again, source="10.1.1.9")
    with pytest.raises(PermissionDenied, match="role 'admin' refused"):
        tokens.issue("110", role="admin")


def test_token_guessing_is_throttled_by_source_but_a_valid_token_always_passes(store):
    from command.security.auth import Throttled
    tokens = Tokens(store, clock=Clock())
    token = tokens.issue("120")
    for _ in range(MAX_FAILURES * 4):
        with pytest.raises(PermissionDenied):
            tokens.verify("yzt_guess", source="198.51.100.7")
    with pytest.raises(Throttled, match="too many refused tokens"):
        tokens.verify("yzt_guess", source="198.51.100.7")
    assert tokens.verify(token, source="198.51.100.7").name == "120"
    assert tokens.verify(token, source="10.0.0.1").name == "120"


# ---------------------------------------------------------------------------------------------- CLI
def _cli(argv, capsys, stdin=None, monkeypatch=None):
    app = typer.Typer()
    for sub, name in ((users_app, "users"), (tokens_app, "tokens"), (audit_app, "audit"), (admin_app, "admin")):
        app.add_typer(sub, name=name)
    if stdin is not None:
        import io
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = output.run_guarded(typer.main.get_command(app), argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_cli_users_tokens_and_admin_ensure(capsys, monkeypatch):
    code, out, _ = _cli(["admin", "ensure"], capsys)
    assert code == 0 and "password (shown once" in out
    admin_pw = out.rsplit(": ", 1)[1].strip()
    code, out, _ = _cli(["admin", "ensure"], capsys)
    assert code == 0 and "no admin created" in out
    code, out, _ = _cli(["users", "add", "王五", "--role", "officer"], capsys)
    assert code == 0 and "shown once" in out
    code, out, _ = _cli(["users", "add", "李四", "--role", "commander", "--password-stdin"], capsys,
                        stdin="a very long password\n", monkeypatch=monkeypatch)
    assert code == 0 and "a very long password" not in out
    code, out, _ = _cli(["users", "list", "--json"], capsys)
    assert code == 0 and [u["name"] for u in __import__("json").loads(out)["users"]] == ["admin", "王五", "李四"]
    code, out, err = _cli(["users", "add", "王五", "--role", "officer"], capsys)
    assert code == 2 and err.strip() == "yzt: user '王五' already exists"
    assert _cli(["users", "disable", "王五"], capsys)[0] == 0
    code, out, _ = _cli(["users", "passwd", "admin"], capsys)
    assert code == 0 and admin_pw not in out and "shown once" in out
    code, out, _ = _cli(["tokens", "issue", "119"], capsys)
    token = out.rsplit(": ", 1)[1].strip()
    assert code == 0 and token.startswith("yzt_")
    assert _cli(["tokens", "revoke", "119"], capsys)[0] == 0
    code, _, err = _cli(["tokens", "revoke", "119"], capsys)
    assert code == 2 and "no active token" in err
    code, out, _ = _cli(["audit", "show", "--last", "3"], capsys)
    assert code == 0 and "tokens.revoke" in out and "tokens.issue" in out
    assert _cli(["audit", "verify"], capsys)[0] == 0
