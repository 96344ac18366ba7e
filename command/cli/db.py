"""``yzt db backup FILE`` / ``yzt db restore FILE``: a consistent copy of the database while the product runs.

SQLite: SQLite's online backup API (``sqlite3.Connection.backup``) copies the live file page by page under its
own read transaction, so servers and outbox workers keep writing meanwhile and the copy is one moment of the
database; the copy is written beside FILE and renamed into place, so a half-written backup never has FILE's
name. Restore checks that FILE is a store this program can open (migrating a copy, never FILE itself), then
copies it into the configured database with the same API; it refuses to overwrite a database that holds
anything unless ``--replace`` is given.

PostgreSQL (``database: postgresql://...``): the same commands run ``pg_dump --format=custom`` and
``pg_restore --clean --if-exists --no-owner --single-transaction`` against the configured URL (the PostgreSQL
client tools must be installed: Debian ``postgresql-client``). By hand, that is:

    pg_dump --format=custom --file yzt.dump "$YZT_DATABASE"
    pg_restore --clean --if-exists --no-owner --single-transaction --dbname "$YZT_DATABASE" yzt.dump

After either restore, ``yzt audit verify`` checks the restored chain.
"""
from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import typer

from command.cli import output as out
from command.cli.output import JSON_OPT
from command.errors import StoreError

db_app = typer.Typer(no_args_is_help=True, help="The database: online backup and restore.")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


@db_app.command("backup")
def backup(file: Path = typer.Argument(..., help="where the copy goes (refused when it exists)"),
           as_json: bool = JSON_OPT) -> None:
    """Copy the database to FILE while the product keeps running."""
    from command.store import is_postgres_url
    settings = out.settings()
    if file.exists():
        raise StoreError(f"backup {file}: already exists; choose a new name (a backup never overwrites)")
    file.parent.mkdir(parents=True, exist_ok=True)
    if is_postgres_url(settings.database):
        _pg_tool("pg_dump", "--format=custom", "--file", str(file), "--dbname", settings.database)
        result = {"backup": str(file), "database": "postgresql", "bytes": file.stat().st_size}
    else:
        result = sqlite_backup(settings.database_path, file)
    out.emit(result, as_json, lambda d: f"backed up to {d['backup']} ({d['bytes']} bytes)")


@db_app.command("restore")
def restore(file: Path = typer.Argument(..., help="a backup made by yzt db backup"),
            replace: bool = typer.Option(False, "--replace", help="overwrite a database that holds data"),
            as_json: bool = JSON_OPT) -> None:
    """Put a backup back as the configured database; then run yzt audit verify."""
    from command.store import is_postgres_url, open_store
    settings = out.settings()
    if not file.is_file():
        raise StoreError(f"restore {file}: no such file")
    if not replace:
        store = open_store(settings)
        try:
            holds = bool(store.incident_ids() or store.users() or store.audit_numbered())
        finally:
            store.close()
        if holds:
            raise StoreError("restore refused: the database already holds data; give --replace to overwrite it")
    if is_postgres_url(settings.database):
        _pg_tool("pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
                 "--dbname", settings.database, str(file))
        result: dict[str, Any] = {"restored": str(file), "database": "postgresql"}
    else:
        result = sqlite_restore(file, settings.database_path)
    out.emit(result, as_json, lambda d: f"restored {d['restored']}; now run: yzt audit verify")


def sqlite_backup(database: Path, file: Path) -> dict[str, Any]:
    """Online copy of ``database`` to ``file`` (written beside it, then renamed)."""
    from command.store.sqlite import Store
    file.parent.mkdir(parents=True, exist_ok=True)
    store = Store(database)       # opens (and migrates) the live database the way the product does
    part = file.with_name(file.name + ".part")
    try:
        dst = sqlite3.connect(part)
        try:
            store._conn().backup(dst)
        finally:
            dst.close()
        os.replace(part, file)
    except sqlite3.DatabaseError as e:
        raise StoreError(f"backup {file}: {e}") from None
    finally:
        store.close()
        part.unlink(missing_ok=True)
    return {"backup": str(file), "database": "sqlite", "bytes": file.stat().st_size}


def sqlite_restore(file: Path, database: Path) -> dict[str, Any]:
    """Check that ``file`` is a store (on a migrated copy), then copy it into ``database`` online."""
    from command.store.sqlite import Store
    with tempfile.TemporaryDirectory(prefix="yzt-restore-") as tmp:
        probe = Path(tmp) / "probe.db"
        shutil.copyfile(file, probe)
        try:
            checked = Store(probe)
        except StoreError as e:   # say which file, not the temporary copy's name
            raise StoreError(f"restore {file}: not a backup of this program ({str(e).split(': ', 1)[-1]})") from None
        try:
            target = Store(database)
            try:
                checked._conn().backup(target._conn())
            except sqlite3.DatabaseError as e:
                raise StoreError(f"restore {file}: {e}") from None
            finally:
                target.close()
        finally:
            checked.close()
    return {"restored": str(file), "database": "sqlite", "into": str(database)}


def _pg_tool(name: str, *args: str) -> None:
    """Run a PostgreSQL client tool (PATH first, then Debian's versioned folders); one clear line on failure."""
    exe = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)),
                                     None)
    if exe is None:
        raise StoreError(f"{name} not found: install the PostgreSQL client tools (Debian: postgresql-client)")
    done = subprocess.run([exe, *args], capture_output=True, text=True)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise StoreError(f"{name} failed: {why}")
