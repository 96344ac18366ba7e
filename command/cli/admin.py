"""``yzt users|tokens|audit|admin``: who may sign in, which dispatch systems hold tokens, the audit log.

    yzt users add 王五 --role officer            # prints the generated password once
    echo "$PW" | yzt users add 李四 --role commander --password-stdin
    yzt users list | disable NAME | passwd NAME [--password-stdin]
    yzt tokens issue 119 [--role officer]        # prints the token once; only its hash is stored
    yzt tokens revoke 119 | list
    yzt audit verify                             # exit 0 ok; exit 1 with one line naming the first bad entry
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




def _store() -> Any:
    from command.store.sqlite import Store
    return Store.open_default()


def _stdin_password() -> str:
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise typer.BadParameter("no password on stdin", param_hint="--password-stdin")
    return line


# ------------------------------------------------------------------------------------------------ users
@users_app.command("add")
def users_add(name: str = typer.Argument(..., help="sign-in name"),
              role: str = typer.Option(..., "--role", help="viewer | officer | commander | admin"),
              password_stdin: bool = STDIN_OPT) -> None:
    """Add a user. Without --password-stdin a random password is generated and printed once."""
    from command.security.auth import Users
    given = _stdin_password() if password_stdin else None
    password = Users(_store()).add(name, role, given, actor=_actor(), source="cli")
    if given is None:
        typer.echo(f"user {name} ({role}) added; password (shown once): {password}")
    else:
        typer.echo(f"user {name} ({role}) added")


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
@tokens_app.command("issue")
def tokens_issue(system: str = typer.Argument(..., help="e.g. 110, 119, 120"),
                 role: str = typer.Option("officer", "--role", help="viewer | officer | commander")) -> None:
    """Issue SYSTEM's API token (replacing any earlier one); printed once."""
    from command.security.auth import Tokens
    token = Tokens(_store()).issue(system, role, actor=_actor(), source="cli")
    typer.echo(f"token for {system} ({role}), shown once: {token}")


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
    report = AuditLog(_store()).verify()
    if as_json:
        typer.echo(json.dumps({"ok": report.ok, "entries": report.entries, "first_bad": report.first_bad,
                               "reason": report.reason}, ensure_ascii=False))
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
