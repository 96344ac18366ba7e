"""The dashboard's one set of services, opened lazily on first use (never at import).

    from command.dashboard import runtime
    rt = runtime.configure(settings)     # app.create_app does this
    rt = runtime.current()               # in callbacks
    svc = rt.service(exercise=True)      # ResponseService over the one store and the one outbox
    rt.outbox()                          # started in background mode: live channels deliver while we poll

Two ResponseService objects share the store and the outbox: one for Actual (live channels), one for
Exercise (exercise channels). The mode is chosen per warning by the officer; the service enforces it.
Slow work (sending through channels) runs on a small thread pool so a callback never blocks the page.
"""
from __future__ import annotations

import atexit
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._store = None
        self._outbox = None
        self._services: dict[bool, Any] = {}
        self._pool: ThreadPoolExecutor | None = None

    def store(self):
        with self._lock:
            if self._store is None:
                from command.store.sqlite import Store
                self._store = Store(self.settings.database_path)
            return self._store

    def outbox(self):
        with self._lock:
            if self._outbox is None:
                from command.alerts.outbox import Outbox
                self._outbox = Outbox(self.store(), self.settings)
                self._outbox.start()
            return self._outbox

    def service(self, exercise: bool = False):
        with self._lock:
            if exercise not in self._services:
                from command.response.service import ResponseService
                self._services[exercise] = ResponseService(
                    self.store(), settings=self.settings, exercise=exercise, outbox=self.outbox())
            return self._services[exercise]

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="yzt-dash")
            return self._pool.submit(fn, *args, **kwargs)

    def channel_modes(self) -> dict[str, str]:
        return {c.name: c.mode for c in self.settings.channels}

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            if self._outbox is not None:
                self._outbox.close()
                self._outbox = None
            if self._store is not None:
                self._store.close()
                self._store = None
            self._services.clear()


_current: Runtime | None = None
_guard = threading.Lock()


def configure(settings: Any = None) -> Runtime:
    """Make the runtime for ``settings`` (default: the process settings) the current one."""
    global _current
    if settings is None:
        from settings import get_settings
        settings = get_settings()
    with _guard:
        if _current is not None:
            _current.close()
        _current = Runtime(settings)
        return _current


def current() -> Runtime:
    with _guard:
        rt = _current
    return rt if rt is not None else configure()


@atexit.register
def _shutdown() -> None:
    if _current is not None:
        try:
            _current.close()
        except Exception:  # noqa: BLE001 - leaving the process; nothing left to tell
            log.exception("closing the dashboard runtime")
