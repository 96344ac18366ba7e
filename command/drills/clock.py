"""Exercise time: the clock a live exercise runs on, for its injects, its players' actions and its targets.

    from command.drills.clock import ExerciseClock
    clock = ExerciseClock(scenario.start, speed=60)      # stopped at the scenario's start
    clock.run()                                          # exercise time now runs 60 s per wall second
    clock.pause(); clock.resume()                        # paused wall time never becomes exercise time
    clock.jump(600)                                      # ten exercise minutes ahead, at once
    clock.now()                                          # what ResponseService stamps events with (+08:00, s)

Exercise time is ``start + offset``; the offset grows at ``speed`` while the clock runs and stands still
while it is paused or stopped, so a pause is excluded from every target measured in exercise time, and an
inject due during a pause comes due right after it. ``wall`` (epoch seconds) is a seam for tests: give it
a function you move by hand.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Callable

from command.errors import ScenarioError
from command.response.timeline import BEIJING

MIN_SPEED, MAX_SPEED = 1.0, 60.0


def check_speed(speed: float) -> float:
    """A speed a trainer may choose: 1x (real time) to 60x (an hour a minute)."""
    try:
        value = float(speed)
    except (TypeError, ValueError):
        raise ScenarioError(f"speed {speed!r}: a number from {MIN_SPEED:g} to {MAX_SPEED:g}") from None
    if not MIN_SPEED <= value <= MAX_SPEED:
        raise ScenarioError(f"speed {speed!r}: from {MIN_SPEED:g}x to {MAX_SPEED:g}x")
    return value


class ExerciseClock:
    """``start`` plus an offset that runs at ``speed`` while running; thread-safe, never runs backwards."""

    def __init__(self, start: datetime, speed: float, *, wall: Callable[[], float] = time.time,
                 offset_s: float = 0.0) -> None:
        if start.tzinfo is None:
            raise ScenarioError("an exercise clock needs a start time with a UTC offset")
        self._start = start.astimezone(BEIJING).replace(microsecond=0)
        self.speed = check_speed(speed)
        self._wall = wall
        self._base = float(offset_s)      # the offset when the clock last started or stopped
        self._since: float | None = None  # wall time it last started running; None while stopped
        self._lock = threading.Lock()

    @property
    def start(self) -> datetime:
        return self._start

    @property
    def running(self) -> bool:
        return self._since is not None

    def offset_s(self) -> float:
        """Exercise seconds since the scenario's start."""
        with self._lock:
            return self._offset()

    def _offset(self) -> float:
        if self._since is None:
            return self._base
        return self._base + max(0.0, self._wall() - self._since) * self.speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=int(self.offset_s()))

    def at(self, offset_s: float) -> datetime:
        return self._start + timedelta(seconds=int(offset_s))

    def run(self) -> float:
        """Start (or resume) running; returns the offset it runs from."""
        with self._lock:
            if self._since is None:
                self._since = self._wall()
            return self._base

    resume = run

    def pause(self) -> float:
        """Stand still; returns the offset it stopped at."""
        with self._lock:
            self._base = self._offset()
            self._since = None
            return self._base

    def jump(self, seconds: float) -> tuple[float, float]:
        """Move ``seconds`` of exercise time ahead at once; returns (from, to). Never backwards."""
        if not seconds > 0:
            raise ScenarioError(f"jump of {seconds!r} s: an exercise only jumps ahead (more than 0 s)")
        with self._lock:
            before = self._offset()
            self._base = before + float(seconds)
            if self._since is not None:
                self._since = self._wall()
            return before, self._base

    def set_state(self, offset_s: float, since: float | None) -> None:
        """Stand at ``offset_s``, running from wall time ``since`` (None: stopped). An exercise's log holds
        both at every change, so every process serving it derives the same clock from the log."""
        with self._lock:
            self._base, self._since = float(offset_s), since

    def wall_until(self, offset_s: float) -> float | None:
        """Wall seconds until exercise time reaches ``offset_s`` (0 when it has); None while stopped."""
        with self._lock:
            now = self._offset()
            if now >= offset_s:
                return 0.0
            if self._since is None:
                return None
            return (offset_s - now) / self.speed
