"""The store under test: SQLite files by default, PostgreSQL when ``YZT_TEST_DATABASE`` names a server.

    from helpers_store import new_store
    store = new_store(tmp_path / "svc.db")      # the same path again in the same test: the same database

With ``YZT_TEST_DATABASE=postgresql://.../postgres?host=...`` (``make test`` starts a throwaway cluster and sets
it), every test gets empty PostgreSQL databases instead of files: the database ``YZT_DATABASE`` names (what
``open_store(settings)`` opens, so the CLI, the API and the dashboard use PostgreSQL too) and one more per
distinct path given to ``new_store``. Databases are made once per test process from a migrated template and
emptied before each test that uses them (creating a database costs ~0.4 s here, emptying one ~20 ms).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ADMIN_URL = os.environ.get("YZT_TEST_DATABASE", "")
BACKEND = "postgres" if ADMIN_URL else "sqlite"
TEMPLATE = "yzt_template"
_KEEP = ("schema_version", "audit_tip")     # emptied by truncation: every other table of the schema


def database_url(name: str) -> str:
    """The admin URL with another database name."""
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path="/" + name))


class PgSlots:
    """This test process's PostgreSQL databases: slot 0 is the settings' database, 1.. the paths of a test."""

    def __init__(self) -> None:
        import psycopg
        self.psycopg = psycopg
        worker = re.sub(r"\W", "_", os.environ.get("PYTEST_XDIST_WORKER", "main"))
        self.prefix = f"yzt_{worker}_"
        self._admin = psycopg.connect(ADMIN_URL, autocommit=True)
        self._made: set[int] = set()
        self._keep: dict[int, Any] = {}      # one connection per slot that survives the reset
        self._ensure_template()

    def _ensure_template(self) -> None:
        from command.store.postgres import PostgresStore
        conn = self._admin
        conn.execute("SELECT pg_advisory_lock(4242)")        # one test process makes the template
        try:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEMPLATE,)).fetchone():
                conn.execute(f"CREATE DATABASE {TEMPLATE}")
            PostgresStore(database_url(TEMPLATE)).close()       # migrated to this program's version
            existing = {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                                   (self.prefix + "%",))}
            for name in existing:                             # a previous run's leftovers in this cluster
                conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
        finally:
            conn.execute("SELECT pg_advisory_unlock(4242)")

    def url(self, slot: int) -> str:
        """An empty, migrated database for ``slot`` (made the first time, emptied every time)."""
        name = f"{self.prefix}{slot}"
        if slot not in self._made:
            self._admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY")
            self._made.add(slot)
            self._keep[slot] = self.psycopg.connect(database_url(name), autocommit=True)
        else:
            self._empty(slot, name)
        return database_url(name)

    def _empty(self, slot: int, name: str) -> None:
        keep = self._keep[slot]
        # connections a previous test left open (a store it never closed) must not write into this one
        keep.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                     " AND pid <> pg_backend_pid()", (name,))
        keep.execute("SET session_replication_role = replica")      # the append-only triggers stay quiet
        tables = [r[0] for r in keep.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                  if r[0] not in _KEEP]
        keep.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        keep.execute("UPDATE audit_tip SET id = 0, hash = repeat('0', 64), mac = repeat('0', 64)")  # the genesis
        keep.execute("RESET session_replication_role")

    def scratch(self, name: str) -> str:
        """A new database outside the slots, empty and unmigrated (for upgrade tests); dropped at the end."""
        full = f"{self.prefix}x_{name}"
        self._admin.execute(f"DROP DATABASE IF EXISTS {full} WITH (FORCE)")
        self._admin.execute(f"CREATE DATABASE {full}")
        return database_url(full)

    def drop_scratch(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        self._admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


_slots: PgSlots | None = None


def pg_slots() -> PgSlots:
    global _slots
    if _slots is None:
        _slots = PgSlots()
    return _slots


class _TestStores:
    """The stores one test opened through ``new_store``, by path; closed when the test ends."""

    def __init__(self) -> None:
        self.settings_db: Path | None = None
        self.urls: dict[str, str] = {}
        self.opened: list[Any] = []

    def url_for(self, path: Path) -> str:
        key = str(Path(path).resolve())
        if key not in self.urls:
            if self.settings_db is not None and key == str(self.settings_db.resolve()):
                self.urls[key] = os.environ["YZT_DATABASE"]
            else:
                self.urls[key] = pg_slots().url(len(self.urls) + 1)
        return self.urls[key]


_current = _TestStores()


def begin_test(var_dir: Path) -> str | None:
    """Called before each test: in PostgreSQL mode, the URL the test's settings must name (YZT_DATABASE)."""
    global _current
    _current = _TestStores()
    if BACKEND == "sqlite":
        return None
    _current.settings_db = var_dir / "yzt.db"
    return pg_slots().url(0)


def end_test() -> None:
    for store in _current.opened:
        try:
            store.close()
        except Exception:
            pass
    _current.opened.clear()


def new_store(path: Path | str, **kwargs: Any) -> Any:
    """A store of the backend under test for what would be the SQLite file ``path``."""
    if BACKEND == "sqlite":
        from command.store.sqlite import Store
        return Store(path, **kwargs)
    from command.security.audit import Anchor
    from command.store.postgres import PostgresStore
    # the tip's anchor beside ``path``, as SQLite keeps it beside its file: a slot's database is emptied and
    # used again by later tests, and PostgresStore's default (a file per database name under ~/.config/yzt)
    # would still hold an earlier test's tip. The key stays the default one: a child process opening the
    # same database by its URL (target_for) must read the same HMACs.
    path = Path(path)
    store = PostgresStore(_current.url_for(path),
                          anchor=Anchor(path.with_name(path.name + ".audit-anchor"), database=str(path)))
    _current.opened.append(store)
    return store


def target_for(path: Path | str) -> str:
    """What ``open_store`` takes for the database ``new_store(path)`` opens (for a child process)."""
    if BACKEND == "sqlite":
        return str(path)
    return _current.url_for(Path(path))


def dedicated_database(name: str) -> str | None:
    """On the PostgreSQL pass, the URL of a new migrated database of its own (for a module-scoped server
    that outlives one test); None on SQLite, where the server's var_dir holds its file."""
    if BACKEND == "sqlite":
        return None
    slots = pg_slots()
    full = f"{slots.prefix}d_{name}"
    slots._admin.execute(f"DROP DATABASE IF EXISTS {full} WITH (FORCE)")
    slots._admin.execute(f"CREATE DATABASE {full} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY")
    return database_url(full)
