"""Finding: API tokens never expired and could not be rotated. Now a token expires (default one year, from
settings.token_lifetime_days at the door), `yzt tokens rotate` gives a new secret with the same role and
scope and voids the old one, and tokens issued before expiries existed got one on upgrade."""
from __future__ import annotations

import sqlite3

import pytest
import typer

from command.cli import output
from command.cli.admin import tokens_app
from command.errors import PermissionDenied
from command.security.auth import Tokens
from command.store.sqlite import Store

DAY = 86400


class Clock:
    def __init__(self, t: float = 1_900_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "tok.db")
    yield s
    s.close()


def test_a_token_expires_after_its_lifetime_default_one_year(store):
    clock = Clock()
    tokens = Tokens(store, clock=clock)
    token = tokens.issue("119")
    assert tokens.verify(token, source="10.0.0.1").name == "119"
    clock.t += 364 * DAY
    assert tokens.verify(token, source="10.0.0.1").name == "119"
    clock.t += 2 * DAY
    with pytest.raises(PermissionDenied, match="expired"):
        tokens.verify(token, source="10.0.0.1")


def test_a_shorter_lifetime_is_kept(store):
    clock = Clock()
    tokens = Tokens(store, clock=clock, lifetime_days=30)
    token = tokens.issue("120", days=7)
    clock.t += 8 * DAY
    with pytest.raises(PermissionDenied, match="expired"):
        tokens.verify(token, source="10.0.0.1")
    with pytest.raises(PermissionDenied):
        tokens.issue("121", days=0)


def test_rotation_keeps_role_and_scope_and_voids_the_old_secret(store):
    clock = Clock()
    tokens = Tokens(store, clock=clock)
    old = tokens.issue("119", "viewer", scope="440106")
    new = tokens.rotate("119")
    assert new != old
    with pytest.raises(PermissionDenied):
        tokens.verify(old, source="10.0.0.1")
    p = tokens.verify(new, source="10.0.0.1")
    assert (p.role, p.scope) == ("viewer", "440106")


def test_tokens_issued_before_expiries_existed_get_one_on_upgrade(tmp_path):
    path = tmp_path / "old.db"
    Store(path).close()
    con = sqlite3.connect(path)
    con.execute("DROP TABLE tokens")
    con.execute("CREATE TABLE tokens (system TEXT PRIMARY KEY, role TEXT NOT NULL, token_sha256 TEXT NOT NULL UNIQUE,"
                " created_at TEXT NOT NULL, revoked_at TEXT)")
    con.execute("INSERT INTO tokens VALUES ('110', 'officer', 'abc', '2020-01-01T00:00:00+00:00', NULL)")
    con.execute("UPDATE schema_version SET version = 4")
    con.commit()
    con.close()
    store = Store(path)
    row = next(t for t in store.tokens() if t["system"] == "110")
    assert row["expires_at"].startswith("2020-12-31") and row["scope"] == "440000"
    store.close()


def test_cli_issues_with_days_and_rotates(capsys):
    cli = typer.Typer()
    cli.add_typer(tokens_app, name="tokens")
    cmd = typer.main.get_command(cli)
    assert output.run_guarded(cmd, ["tokens", "issue", "119", "--days", "30", "--scope", "440100"]) == 0
    out = capsys.readouterr().out
    assert "expires" in out and "scope 440100" in out
    assert output.run_guarded(cmd, ["tokens", "rotate", "119"]) == 0
    assert "rotated" in capsys.readouterr().out
    assert output.run_guarded(cmd, ["tokens", "rotate", "nobody"]) != 0
    assert "no token for system" in capsys.readouterr().err
