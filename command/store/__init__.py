"""Persistence: the event log, the alert and delivery queue, accounts and the audit chain, behind the
interfaces of ``command.store.interfaces``; SQLite (``sqlite``) is the embedded default, PostgreSQL
(``postgres``) the shared store of several servers.

    from command.store import open_store
    store = open_store(settings)          # settings.database: a file -> SQLite, postgresql://... -> PostgreSQL
    store = open_store("postgresql://yzt@db.example/yzt")
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from command._lazy import lazy_face

__all__ = ["Accounts", "AuditChain", "DeliveryQueue", "EventLog", "PostgresStore", "SCHEMA_VERSION", "Store",
           "StoreBackend", "StoredEvent", "is_postgres_url", "open_store"]
_lazy_getattr, __dir__ = lazy_face(__name__, {
    "Store": "sqlite", "PostgresStore": "postgres", "StoredEvent": "interfaces", "EventLog": "interfaces",
    "DeliveryQueue": "interfaces", "Accounts": "interfaces", "AuditChain": "interfaces",
    "StoreBackend": "interfaces", "SCHEMA_VERSION": "schema"})


def __getattr__(name: str) -> Any:
    return _lazy_getattr(name)


def __dir__() -> list[str]:  # noqa: F811 - the face lists every public name, eager or lazy
    return sorted(__all__)


def is_postgres_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


def open_store(settings_or_url: Any, *, durable: bool = True) -> Any:
    """The store named by a settings object's ``database`` (a file path -> SQLite, ``postgresql://...`` ->
    PostgreSQL; unset: ``var_dir/yzt.db``), or by a path or URL given directly. ``durable=False`` (SQLite
    only) skips fsync, for throwaway stores."""
    target = settings_or_url
    trust: dict[str, Any] = {}
    if not isinstance(target, (str, Path)):
        database = getattr(target, "database", None)
        trust = _audit_trust(target)
        target = database if is_postgres_url(database) else target.database_path
    if is_postgres_url(target):
        from command.store.postgres import PostgresStore
        return PostgresStore(target, **trust)
    from command.store.sqlite import Store
    return Store(target, durable=durable, **trust)


def _audit_trust(settings: Any) -> dict[str, Any]:
    """The audit chain's HMAC key (settings.audit_key_path, or YZT_AUDIT_KEY) and the anchor of its tip
    (settings.audit_anchor_path + the yzt_audit_anchor hook), both outside the database."""
    if not hasattr(settings, "audit_key_path"):
        return {}
    from command.security.audit import Anchor, load_key, plugin_anchor_hook
    return {"audit_key": load_key(settings.audit_key_path, settings.audit_key_env),
            "anchor": Anchor(settings.audit_anchor_path, hook=plugin_anchor_hook(),
                             database=str(settings.database or settings.database_path))}
