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
    """The dashboard's ``command.compose.App``, opened on first use, plus a small pool for slow work."""

    def __init__(self, settings: Any, *, deliver: bool = True) -> None:
        self.settings = settings
        self.deliver = deliver          # False in yzt serve's web workers: a delivery process sends
        self._lock = threading.RLock()
        self._app = None
        self._started = False
        self._pool: ThreadPoolExecutor | None = None

    def app(self):
        with self._lock:
            if self._app is None:
                from command import compose
                self._app = compose.open_app(self.settings)
            return self._app

    def store(self):
        return self.app().store

    @property
    def catalog(self):
        return self.app().catalog

    def outbox(self):
        """The one outbox; its background workers run here unless a delivery process of its own sends. A
        player of a live exercise reads the exercise's (its deliveries are there)."""
        played = self.exercise()
        if played is not None:
            return played.service.outbox
        return self._live_outbox()

    def _live_outbox(self):
        with self._lock:
            app = self.app()
            if self.deliver and not self._started:
                app.outbox.start()
                self._started = True
            return app.outbox

    def service(self, exercise: bool = False):
        return self.service_of(self.exercise(), exercise=exercise)

    def service_of(self, played: Any, *, exercise: bool = False):
        """``service()`` for a viewer whose exercise (``self.exercise()``, None: the live world) the caller
        already found: the sync poll needs both and finds the exercise once."""
        if played is not None:      # a player of a live exercise: its own store, Exercise CAP, exercise channels
            return played.service
        self._live_outbox()
        return self.app().service(exercise=exercise)

    def exercise(self):
        """The live exercise the signed-in user of this request plays or runs (command.drills.exercise)."""
        p = _identify()
        if p is None:
            return None
        from command.drills.registry import registry
        return registry(self.settings).of_user(p.name)

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
            if self._app is not None:
                self._app.close()
                self._app = None
                self._started = False
            import sys
            if "command.drills.registry" in sys.modules:     # the exercises' stores and conductor thread
                sys.modules["command.drills.registry"].forget(self.settings)


_current: Runtime | None = None
_guard = threading.Lock()
_identify: Callable[[], Any] = lambda: None     # who signed in to this request: the gate says (identify_with)


def identify_with(who: Callable[[], Any]) -> None:
    """How the runtime learns the request's signed-in Principal; the sign-in gate (security.install) calls
    this, so the runtime needs no import of the gate that itself reads the runtime."""
    global _identify
    _identify = who


def configure(settings: Any, *, deliver: bool = True) -> Runtime:
    """Make the runtime for ``settings`` (read by the door, app.create_app) the current one."""
    global _current
    with _guard:
        if _current is not None:
            _current.close()
        _current = Runtime(settings, deliver=deliver)
        return _current


def current() -> Runtime:
    """The runtime app.create_app configured (in-process callers without one get the process settings')."""
    with _guard:
        rt = _current
    if rt is None:
        from settings import get_settings
        rt = configure(get_settings())
    return rt


@atexit.register
def _shutdown() -> None:
    if _current is not None:
        try:
            _current.close()
        except Exception:  # noqa: BLE001 - leaving the process; nothing left to tell
            log.exception("closing the dashboard runtime")
