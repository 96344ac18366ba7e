"""Who is a trainer: the stored role ``trainer`` (schema 7: ``users.role`` and ``tokens.role`` may hold it).

    from command.drills import trainers
    trainers.require(settings, principal)      # the trainer (may exercise.run), or PermissionDenied
    trainers.is_trainer(settings, principal)   # True for a trainer, False for anyone else or nobody
    trainers.resolve(settings, principal)      # the principal as the exercise doors see it

A trainer is made like any account: ``yzt users add NAME --role trainer`` (the dashboard's trainer page),
``yzt tokens issue SYSTEM --role trainer`` (``/api/v1/exercises``). ``command.security.auth`` gives the role
``view`` and ``exercise.run`` and nothing else.

Before schema 7 the store could not hold the role, and a trainer was a viewer with a grant in a log of its
own (``var_dir/exercises/trainers.db``, stream ``trainers``). That log is still read (never created,
and no grant is added to it), so an account granted then stays a trainer: ``resolve`` lifts a granted
viewer to ``trainer``, and only a viewer (a grant never takes a commander's powers away nor gives anyone a
response action). To retire a grant, store the role (``yzt users role NAME trainer``, or issue the system
a trainer token).
"""
from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

STREAM = "trainers"
ROLE = "trainer"
_stores: dict[str, Any] = {}
_lock = threading.Lock()


def _legacy_path(settings: Any) -> Path:
    return Path(settings.var_dir) / "exercises" / "trainers.db"


def _store(settings: Any):
    """The legacy grant log of ``settings.var_dir``; None when it does not exist."""
    from command.store.sqlite import Store
    path = _legacy_path(settings)
    key = str(path.resolve())
    with _lock:
        if key not in _stores:
            if not path.exists():
                return None
            _stores[key] = Store(path)
        return _stores[key]


def legacy_grants(settings: Any) -> set[tuple[str, str]]:
    """(kind, name) of every grant in force in the pre-schema-7 log (empty when there is no log)."""
    store = _store(settings)
    out: set[tuple[str, str]] = set()
    if store is None:
        return out
    for e in store.events(STREAM):
        who = (e.payload.get("kind", "user"), e.payload.get("name", ""))
        if e.kind == "TrainerGranted":
            out.add(who)
        elif e.kind == "TrainerRevoked":
            out.discard(who)
    return out


def resolve(settings: Any, principal: Any) -> Any:
    """``principal`` as the exercise doors see it: a stored trainer as it is; a viewer granted in the old
    log with role ``trainer``; anyone else (None too) unchanged."""
    if principal is None or principal.role != "viewer":
        return principal
    if (principal.kind, principal.name) in legacy_grants(settings):
        return dataclasses.replace(principal, role=ROLE)
    return principal


def require(settings: Any, principal: Any) -> Any:
    """The principal (resolved) when it may ``exercise.run``; else PermissionDenied in one line."""
    from command.security import auth
    return auth.require(resolve(settings, principal), "exercise.run")


def is_trainer(settings: Any, principal: Any) -> bool:
    """A trainer proper (stored role or old grant): the dashboard gives them the trainer's page. An admin
    may run exercises too, but keeps the command screen."""
    p = resolve(settings, principal)
    return p is not None and p.role == ROLE


def forget(settings: Any) -> None:
    """Close the legacy log of ``settings.var_dir`` if this process opened it (tests, a closing server)."""
    key = str(_legacy_path(settings).resolve())
    with _lock:
        store = _stores.pop(key, None)
    if store is not None:
        store.close()
