"""The composition root: the one place where settings become a store, an outbox, the layer catalogue and
the response service. Every door (the CLI, the dispatch API, the dashboard, drills) builds its objects here,
and settings are read nowhere below this point: they are passed down.

    from command import compose
    app = compose.open_app(settings)               # the settings the door read once
    svc = app.service()                             # live ResponseService; app.service(exercise=True) for drills
    app.outbox.start()                              # the server: background delivery workers
    app.close()

    drill = compose.open_drill(settings, clock=clock)   # a throwaway store, exercise channels only
"""
from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layers.catalog import Catalog


@dataclass
class App:
    """What a door needs, built once from one ``Settings``: close it when the door closes."""

    settings: Any
    store: Any
    outbox: Any
    catalog: Catalog
    clock: Any = None
    exercise_only: bool = False
    _services: dict[bool, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _tmp: Path | None = field(default=None, repr=False)

    def service(self, *, exercise: bool = False):
        """The ResponseService of this app for Actual (``exercise=False``) or Exercise work; one of each."""
        from command.errors import AlertError
        from command.response.service import ResponseService
        if self.exercise_only and not exercise:
            raise AlertError("this is a drill: it has no live service")
        with self._lock:
            if exercise not in self._services:
                self._services[exercise] = ResponseService(
                    self.store, settings=self.settings, clock=self.clock, exercise=exercise, outbox=self.outbox,
                    catalog=self.catalog)
            return self._services[exercise]

    def close(self) -> None:
        self.outbox.close()
        self.store.close()
        self._services.clear()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


def open_store(settings: Any, *, durable: bool = True):
    """The store named by ``settings.database`` (the embedded SQLite file by default)."""
    from command import store
    return store.open_store(settings, durable=durable)


def use_cache(settings: Any) -> None:
    """Built indexes and tables are cached in ``var_dir/cache`` (incidents.cache: keyed by their inputs'
    content, so a changed file is never answered from it)."""
    from incidents import cache
    cache.configure(Path(settings.var_dir) / "cache")


def open_app(settings: Any, *, store: Any = None, clock: Any = None) -> App:
    """Store, outbox and services over ``settings`` (or over ``store`` when a caller already holds one)."""
    from command.alerts.outbox import Outbox
    use_cache(settings)
    store = store if store is not None else open_store(settings)
    return App(settings=settings, store=store, outbox=Outbox(store, settings, clock=clock),
               catalog=Catalog.of(settings), clock=clock)


def drill_settings(settings: Any) -> Any:
    """The settings of a drill: the exercise channels only, so its outbox cannot even build a live one."""
    return settings.model_copy(update={"channels": [c for c in settings.channels if c.mode == "exercise"]})


def open_drill(settings: Any, *, store: Any = None, clock: Any = None) -> App:
    """A drill's app: exercise channels only, Exercise service only, and a throwaway store (no fsync)
    unless ``store`` is given; the temporary folder goes with ``close()``."""
    from command.store import sqlite
    tmp = None
    if store is None:
        tmp = Path(tempfile.mkdtemp(prefix="yzt-drill-"))
        store = sqlite.Store(tmp / "drill.db", durable=False)
    app = open_app(drill_settings(settings), store=store, clock=clock)
    app.exercise_only, app._tmp = True, tmp
    if tmp is None:
        app.store = _Borrowed(store)      # a caller's store stays open after the drill
    return app


class _Borrowed:
    """A store lent to a drill: everything passes through, except close()."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def close(self) -> None:
        pass
