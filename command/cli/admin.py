"""``yzt users|tokens|audit|admin``: who may sign in, which dispatch systems hold tokens, the audit log.

    yzt users add 王五 --role officer --scope 440106   # prints the generated password once; scope: province
    echo "$PW" | yzt users add 李四 --role commander --password-stdin     # (default), a city or district adcode
    yzt users list | disable NAME | passwd NAME [--password-stdin]
    yzt users role NAME ROLE | scope NAME SCOPE       # each ends NAME's sessions
    yzt tokens issue 119 [--role officer] [--scope 440100] [--days 365]   # shown once; only its hash is kept
    yzt tokens rotate 119 [--days N] | revoke 119 | list                  # rotate: same role and scope, new secret
    yzt audit verify                             # exit 0 ok; exit 1 with one line naming the first problem
    yzt audit show [--last N] [--json]
    yzt admin ensure                             # first run: creates "admin" with a random password, printed once

The command line runs as the local operator (whoever can run it can open the database file): every change
is audited with actor ``cli:<login>`` and source ``cli``. ``command.cli.main`` registers the four sub-apps.
"""
from __future__ import annotations

import json
import sys
from typing import Any

import typer

from command.cli import output as out

users_app = typer.Typer(no_args_is_help=True, help="Dashboard users: add, list, disable, set a password.")
tokens_app = typer.Typer(no_args_is_help=True, help="API tokens of the 110/119/120 dispatch systems.")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log: verify and show.")
admin_app = typer.Typer(no_args_is_help=True, help="First-run setup.")
from command.cli.output import JSON_OPT, cli_actor as _actor  # noqa: E402
STDIN_OPT = typer.Option(False, "--password-stdin", help="read the password from the first line of stdin")
SCOPE_OPT = typer.Option(None, "--scope", help="jurisdiction: province (default), a city adcode (440100) or a "
                         "district adcode (440106)")




def _store() -> Any:
    from command import compose
    return compose.open_store(out.settings())


def _stdin_password() -> str:
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise typer.BadParameter("no password on stdin", param_hint="--password-stdin")
    return line


# ------------------------------------------------------------------------------------------------ users
@users_app.command("add")
def users_add(name: str = typer.Argument(..., help="sign-in name"),
              role: str = typer.Option(..., "--role", help="viewer | officer | commander | admin | trainer"),
              scope: str = SCOPE_OPT, password_stdin: bool = STDIN_OPT) -> None:
    """Add a user. Without --password-stdin a random password is generated and printed once."""
    from command.security import scopes
    from command.security.auth import Users
    scope = scopes.parse(scope)
    given = _stdin_password() if password_stdin else None
    password = Users(_store()).add(name, role, given, scope=scope, actor=_actor(), source="cli")
    if given is None:
        typer.echo(f"user {name} ({role}, scope {scope}) added; password (shown once): {password}")
    else:
        typer.echo(f"user {name} ({role}, scope {scope}) added")


@users_app.command("role")
def users_role(name: str, role: str = typer.Argument(..., help="viewer | officer | commander | admin | trainer")) -> None:
    """Change NAME's role; NAME's sessions end at once."""
    from command.security.auth import Users
    Users(_store()).set_role(name, role, actor=_actor(), source="cli")
    typer.echo(f"user {name} is now {role}; their sessions ended")


@users_app.command("scope")
def users_scope(name: str, scope: str = typer.Argument(..., help="province, a city or a district adcode")) -> None:
    """Change NAME's jurisdiction; NAME's sessions end at once."""
    from command.security import scopes
    from command.security.auth import Users
    scope = scopes.parse(scope)
    Users(_store()).set_scope(name, scope, actor=_actor(), source="cli")
    typer.echo(f"user {name} now acts for {scope}; their sessions ended")


@users_app.command("list")
def users_list(as_json: bool = JSON_OPT) -> None:
    """Users with role, disabled flag, creation and last sign-in (never a hash)."""
    from command.security.auth import Users
    rows = Users(_store()).list()
    out.emit({"users": rows}, as_json, lambda d: out.table(d["users"]) if d["users"] else "no users")


@users_app.command("disable")
def users_disable(name: str) -> None:
    """Refuse every further sign-in of NAME (the user stays in the audit log)."""
    from command.security.auth import Users
    Users(_store()).disable(name, actor=_actor(), source="cli")
    typer.echo(f"user {name} disabled")


@users_app.command("passwd")
def users_passwd(name: str, password_stdin: bool = STDIN_OPT) -> None:
    """Set NAME's password: generated and printed once, or read from stdin."""
    from command.security.auth import Users
    given = _stdin_password() if password_stdin else None
    password = Users(_store()).set_password(name, given, actor=_actor(), source="cli")
    typer.echo(f"password of {name} set" + ("" if given else f"; new password (shown once): {password}"))


# ----------------------------------------------------------------------------------------------- tokens
DAYS_OPT = typer.Option(None, "--days", min=1, max=1830, help="valid this many days (default: the settings' "
                        "token_lifetime_days, one year)")


def _tokens() -> Any:
    from command.security.auth import Tokens
    return Tokens(_store(), lifetime_days=out.settings().token_lifetime_days)


@tokens_app.command("issue")
def tokens_issue(system: str = typer.Argument(..., help="e.g. 110, 119, 120"),
                 role: str = typer.Option("officer", "--role", help="viewer | officer | commander | trainer"),
                 scope: str = SCOPE_OPT, days: int = DAYS_OPT) -> None:
    """Issue SYSTEM's API token (replacing any earlier one); printed once."""
    from command.security import scopes
    scope = scopes.parse(scope)
    tokens = _tokens()
    token = tokens.issue(system, role, scope=scope, days=days, actor=_actor(), source="cli")
    row = next(t for t in tokens.list() if t["system"] == system)
    typer.echo(f"token for {system} ({role}, scope {scope}, expires {row['expires_at']}), shown once: {token}")


@tokens_app.command("rotate")
def tokens_rotate(system: str, days: int = DAYS_OPT) -> None:
    """A new token for SYSTEM with the same role and scope; the old one stops working at once."""
    tokens = _tokens()
    token = tokens.rotate(system, days=days, actor=_actor(), source="cli")
    row = next(t for t in tokens.list() if t["system"] == system)
    typer.echo(f"token for {system} rotated (expires {row['expires_at']}); the old one is void; "
               f"shown once: {token}")


@tokens_app.command("revoke")
def tokens_revoke(system: str) -> None:
    """Revoke SYSTEM's token at once."""
    from command.security.auth import Tokens
    Tokens(_store()).revoke(system, actor=_actor(), source="cli")
    typer.echo(f"token of {system} revoked")


@tokens_app.command("list")
def tokens_list(as_json: bool = JSON_OPT) -> None:
    """Systems holding a token, their role and dates (never the token)."""
    from command.security.auth import Tokens
    rows = Tokens(_store()).list()
    out.emit({"tokens": rows}, as_json, lambda d: out.table(d["tokens"]) if d["tokens"] else "no tokens")


# ------------------------------------------------------------------------------------------------ audit
@audit_app.command("verify")
def audit_verify(as_json: bool = JSON_OPT) -> None:
    """Check the hash chain: exit 0 when intact, exit 1 naming the first bad entry."""
    from command.security.audit import AuditLog
    report = AuditLog(_store()).verify()         # the store carries the key and the anchor from the settings
    if as_json:
        typer.echo(json.dumps({"ok": report.ok, "entries": report.entries, "first_bad": report.first_bad,
                               "reason": report.reason, "problems": list(report.problems)}, ensure_ascii=False))
    elif report.ok:
        typer.echo(report.line())
    else:
        sys.stderr.write(f"yzt: {report.line()}\n")
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("show")
def audit_show(last: int = typer.Option(20, "--last", min=1, help="how many of the newest entries"),
               as_json: bool = JSON_OPT) -> None:
    """The newest entries: id, when, who, what, target, from where."""
    from command.security.audit import AuditLog
    rows = AuditLog(_store()).entries(last=last)
    if as_json:
        typer.echo(json.dumps({"entries": rows}, ensure_ascii=False))
        return
    cols = ["id", "at", "actor", "action", "target", "source"]
    typer.echo(out.table([{c: r[c] for c in cols} for r in rows], cols) if rows else "the audit log is empty")


# ------------------------------------------------------------------------------------------------ admin
@admin_app.command("ensure")
def admin_ensure() -> None:
    """On a fresh machine create user "admin" with a random password, printed once; else do nothing."""
    from command.security.auth import Users
    password = Users(_store()).ensure_admin(source="cli")
    if password is None:
        typer.echo("users exist already; no admin created")
    else:
        typer.echo(f"created user admin (role admin); password (shown once, change it with "
                   f"`yzt users passwd admin`): {password}")
