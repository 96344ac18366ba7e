"""Dashboard sessions kept on the server: a cookie only carries a random id; the store says whether it holds.

    from command.security.sessions import Sessions
    sessions = Sessions(store, idle_s=settings.session_idle_min * 60,
                        absolute_s=settings.session_lifetime_h * 3600)
    sid = sessions.start("王五", source="10.0.0.7")   # a new id at every sign-in (no fixation)
    name = sessions.check(sid)                         # the user, or None: ended, idle or too old
    sessions.end(sid)                                  # sign-out
    sessions.end_all("王五")                           # what the store does on password/role/scope change, disable

Only the sha256 of an id is stored, so a copy of the database signs nobody in. A session ends when it is
ended (sign-out), when its user's password, role or scope changes or the user is disabled (the store ends
them in the same transaction as the change), after ``idle_s`` without a request, and ``absolute_s`` after
sign-in whatever happens. ``check`` records use at most every ``touch_s`` seconds (not a write per request).

``check(sid, max_age_s=S)`` may answer from this process's last read of the session when that read is under S
seconds old (no round trip; the idle and absolute limits still hold to the second, from the row's times). So an
end that did not come through this process's ``end``/``end_all`` (another worker's sign-out, the store ending a
changed account's sessions) is seen within S. The dashboard asks it only for its read-only poll
(command.dashboard.security.RECENT_SESSION_S); every other request reads the row.
"""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

_RECENT: OrderedDict[str, tuple[Any, float, str, float, float]] = OrderedDict()  # digest -> (store, read at,
_RECENT_KEPT = 4096                                                 # user, started_at, seen_at) of a live one
_RECENT_LOCK = threading.Lock()


def digest(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


class Sessions:
    def __init__(self, store: Any, *, idle_s: float, absolute_s: float, clock: Callable[[], float] = time.time,
                 touch_s: float = 30.0) -> None:
        self.store = store
        self.idle_s = float(idle_s)
        self.absolute_s = float(absolute_s)
        self.clock = clock
        self.touch_s = min(float(touch_s), self.idle_s / 4)

    def start(self, user: str, *, source: str) -> str:
        """A new session of ``user``; returns its id (for the cookie) once."""
        sid = secrets.token_urlsafe(32)
        self.store.session_start(digest(sid), user, source=str(source)[:64], at=self.clock())
        return sid

    def check(self, sid: Any, *, max_age_s: float = 0.0) -> str | None:
        """The user of a live session, or None (unknown, ended, idle too long, or older than the limit).
        ``max_age_s``: this process's read of it may answer when it is younger than that (see the module)."""
        if not isinstance(sid, str) or not 20 <= len(sid) <= 100:
            return None
        key, now = digest(sid), self.clock()
        if max_age_s > 0:
            user = self._recent(key, now, max_age_s)
            if user is not None:
                return user
        row = self.store.session(key)
        if row is None or row["ended_at"] is not None:
            _forget(key)
            return None
        seen = row["seen_at"]
        if now - row["started_at"] >= self.absolute_s or now - seen >= self.idle_s:
            _forget(key)
            self.store.session_end(key, at=now, why="timeout")
            return None
        if now - seen >= self.touch_s:
            self.store.session_touch(key, at=now)
            seen = now
        with _RECENT_LOCK:
            _RECENT[key] = (self.store, now, row["username"], row["started_at"], seen)
            _RECENT.move_to_end(key)
            while len(_RECENT) > _RECENT_KEPT:
                _RECENT.popitem(last=False)
        return row["username"]

    def _recent(self, key: str, now: float, max_age_s: float) -> str | None:
        with _RECENT_LOCK:
            held = _RECENT.get(key)
        if held is None or held[0] is not self.store:
            return None
        _, read_at, user, started, seen = held
        if not 0 <= now - read_at < max_age_s or now - started >= self.absolute_s or now - seen >= self.idle_s:
            return None                  # too old to trust, or at a limit: the row decides (and ends it)
        return user

    def end(self, sid: Any) -> None:
        if isinstance(sid, str) and sid:
            _forget(digest(sid))
            self.store.session_end(digest(sid), at=self.clock(), why="signed out")

    def end_all(self, user: str) -> int:
        with _RECENT_LOCK:
            for key in [k for k, v in _RECENT.items() if v[2] == user]:
                del _RECENT[key]
        return self.store.sessions_end_user(user, at=self.clock(), why="ended")


def _forget(key: str) -> None:
    with _RECENT_LOCK:
        _RECENT.pop(key, None)
