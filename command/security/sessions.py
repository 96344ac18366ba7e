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
"""
from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any


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

    def check(self, sid: Any) -> str | None:
        """The user of a live session, or None (unknown, ended, idle too long, or older than the limit)."""
        if not isinstance(sid, str) or not 20 <= len(sid) <= 100:
            return None
        row = self.store.session(digest(sid))
        now = self.clock()
        if row is None or row["ended_at"] is not None:
            return None
        if now - row["started_at"] >= self.absolute_s or now - row["seen_at"] >= self.idle_s:
            self.store.session_end(digest(sid), at=now, why="timeout")
            return None
        if now - row["seen_at"] >= self.touch_s:
            self.store.session_touch(digest(sid), at=now)
        return row["username"]

    def end(self, sid: Any) -> None:
        if isinstance(sid, str) and sid:
            self.store.session_end(digest(sid), at=self.clock(), why="signed out")

    def end_all(self, user: str) -> int:
        return self.store.sessions_end_user(user, at=self.clock(), why="ended")
