"""Who is a trainer: a grant on a viewer account (a dashboard user or an API token's system).

    from command.drills import trainers
    trainers.grant(settings, "trainer1", kind="user", by="admin")      # trainer1 is a viewer user
    trainers.resolve(settings, principal)      # the same Principal with role "trainer" when granted

Why a grant and not a stored role: ``command.security.auth`` knows the ``trainer`` role and its permissions
(view, exercise.run), but the store's ``users.role`` and ``tokens.role`` CHECK constraints list only the
ranked roles, and the store takes no schema change while it is being split. Until they hold ``trainer``,
an account is stored as a viewer and this grant (an event log of its own, ``var_dir/exercises/trainers.db``,
stream ``trainers``) makes it a trainer at the doors (``resolve``). A grant only ever lifts a viewer: it
never takes a commander's powers away nor gives anyone a response action.
"""
from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

STREAM = "trainers"
_stores: dict[str, Any] = {}
_lock = threading.Lock()


def _store(settings: Any):
    from command.store.sqlite import Store
    key = str(Path(settings.var_dir).resolve())
    with _lock:
        if key not in _stores:
            _stores[key] = Store(Path(settings.var_dir) / "exercises" / "trainers.db")
        return _stores[key]


def _granted(settings: Any) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for e in _store(settings).events(STREAM):
        who = (e.payload.get("kind", "user"), e.payload.get("name", ""))
        if e.kind == "TrainerGranted":
            out.add(who)
        elif e.kind == "TrainerRevoked":
            out.discard(who)
    return out


def grant(settings: Any, name: str, *, kind: str = "user", by: str = "cli") -> None:
    from command.response.timeline import SystemClock, iso
    from command.security.auth import _check_name
    if kind not in ("user", "system"):
        raise ValueError(f"kind {kind!r}: user or system")
    _check_name(name, "user name" if kind == "user" else "system name")
    _store(settings).append_event(STREAM, "TrainerGranted", {"name": name, "kind": kind},
                                  at=iso(SystemClock().now()), actor=by, source="cli")


def revoke(settings: Any, name: str, *, kind: str = "user", by: str = "cli") -> None:
    from command.response.timeline import SystemClock, iso
    _store(settings).append_event(STREAM, "TrainerRevoked", {"name": name, "kind": kind},
                                  at=iso(SystemClock().now()), actor=by, source="cli")


def is_trainer(settings: Any, name: str, *, kind: str = "user") -> bool:
    return (kind, name) in _granted(settings)


def resolve(settings: Any, principal: Any) -> Any:
    """``principal`` with role ``trainer`` when it is a granted viewer; otherwise unchanged (None stays)."""
    if principal is None or principal.role != "viewer":
        return principal
    if is_trainer(settings, principal.name, kind=principal.kind):
        return dataclasses.replace(principal, role="trainer")
    return principal


def forget(settings: Any) -> None:
    key = str(Path(settings.var_dir).resolve())
    with _lock:
        store = _stores.pop(key, None)
    if store is not None:
        store.close()
