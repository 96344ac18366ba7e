"""Persistence: the event log, the alert and delivery queue, accounts and the audit chain, behind the
interfaces of ``command.store.interfaces``; SQLite (``sqlite``) is the embedded default.

    from command.store import open_store
    store = open_store(settings)
"""
from command._lazy import lazy_face

__all__ = ["Store", "StoredEvent"]
__getattr__, __dir__ = lazy_face(__name__, {"Store": "sqlite", "StoredEvent": "sqlite"})
