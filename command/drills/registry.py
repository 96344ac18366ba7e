"""The exercises of one var_dir: started, found again by any worker process, listed; and a scenario given
as text (an upload) checked as strictly as a file.

    from command.drills.registry import registry
    book = registry(settings)                  # one per var_dir, in this process
"""
from __future__ import annotations

import logging

import json
import re
import secrets
import stat
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable
from command.drills.clock import check_speed
from command.drills.scenario import Scenario
from command.errors import CommandError, ScenarioError
from command.drills.exercise import scenario_from_text, DEFAULT_TOLERANCE_S, Exercise, ExerciseNotFound, MAX_PLAYERS, MAX_TOLERANCE_S, _ID

log = logging.getLogger("command.drills.exercise")
RACY_NS = 2_000_000_000      # a listing this soon after the folder's last change is not trusted to be whole


# ---------------------------------------------------------------------- the registry
class Exercises:
    """Every exercise of one var_dir in this process, and the conductor thread that moves them on."""

    def __init__(self, settings: Any, *, wall: Callable[[], float] = time.time, conduct: bool = True) -> None:
        self.settings = settings
        self.root = Path(settings.var_dir) / "exercises"
        self._wall = wall
        self._lock = threading.RLock()
        self._all: dict[str, Exercise] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conduct = conduct
        self._scan: tuple[int, int] | None = None   # (the folder's mtime, when it was listed), both ns
        self._pending: set[str] = set()            # folders listed before their meta.json was written
        self._load()

    # -- opening
    def start(self, scenario: Scenario | str, *, speed: float, players: list[str], trainer: str,
              tolerance_s: int = DEFAULT_TOLERANCE_S) -> Exercise:
        """Start an exercise now: check everything first, then create its folder and deliver what is due."""
        text = scenario if isinstance(scenario, str) else Path(scenario.path).read_text(encoding="utf-8")
        sc = scenario_from_text(text) if isinstance(scenario, str) else scenario
        speed = check_speed(speed)
        players = self._check_players(players)
        if isinstance(tolerance_s, bool) or not isinstance(tolerance_s, int) or \
                not 0 <= tolerance_s <= MAX_TOLERANCE_S:
            raise ScenarioError(f"tolerance_s {tolerance_s!r}: whole seconds from 0 to {MAX_TOLERANCE_S}")
        with self._lock:
            for name in players:
                busy = self.playing(name)
                if busy is not None:
                    raise ScenarioError(f"player {name} already plays exercise {busy.id} ({busy.name}); "
                                        "a player is in one exercise at a time")
            ex_id = f"ex{datetime.now().strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
            folder = self.root / ex_id
            folder.mkdir(parents=True)
            meta = {"id": ex_id, "speed": speed, "players": players, "trainer": trainer,
                    "tolerance_s": tolerance_s, "created_wall": self._wall()}
            (folder / "scenario.yaml").write_text(text, encoding="utf-8")
            (folder / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
            ex = Exercise(folder, sc, meta=meta, settings=self.settings, wall=self._wall)
            self._all[ex_id] = ex
        ex.begin()
        self._ensure_thread()
        self._wake.set()
        return ex

    def _check_players(self, players: Any) -> list[str]:
        if not isinstance(players, (list, tuple)) or not all(isinstance(p, str) for p in players):
            raise ScenarioError("players: a list of user names")
        out = list(dict.fromkeys(p.strip() for p in players if p.strip()))
        if len(out) > MAX_PLAYERS:
            raise ScenarioError(f"players: at most {MAX_PLAYERS}")
        for p in out:
            if not re.match(r"^[\w.@-]{1,64}$", p):
                raise ScenarioError(f"players: {p[:64]!r} is not a user name")
        return out

    def _load(self) -> None:
        """Exercises in the var_dir that this process does not hold yet (started by another process, or
        before a restart): their control logs folded, their clocks where the logs say."""
        try:
            st = self.root.stat()
        except OSError:
            return
        if not stat.S_ISDIR(st.st_mode):
            return
        mtime = st.st_mtime_ns
        self._pending.clear()
        for folder in sorted(self.root.iterdir()):
            if folder.name in self._all or not _ID.match(folder.name):
                continue
            if not (folder / "meta.json").exists():
                self._pending.add(folder.name)          # mid-start in another process: look again next time
                continue
            try:
                meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
                sc = scenario_from_text((folder / "scenario.yaml").read_text(encoding="utf-8"))
                ex = Exercise(folder, sc, meta=meta, settings=self.settings, wall=self._wall)
                ex.refresh()
                self._all[ex.id] = ex
            except (CommandError, OSError, ValueError, KeyError) as e:
                log.warning("exercise folder %s not loaded: %s", folder, e)
        self._scan = (mtime, time.time_ns())
        if any(ex.phase == "running" for ex in self._all.values()):
            self._ensure_thread()

    def _listed(self) -> bool:
        """Whether the last listing of the folder still stands: the folder's mtime has not moved since, the
        listing came more than RACY_NS after that mtime (a folder made in the same clock tick as an earlier
        change would not move it: git's "racy" rule) and no folder was waiting for its meta.json. One stat
        instead of a listing, and no lock, for what every dashboard request asks: "which exercise is this?"."""
        scan = self._scan
        if scan is None or self._pending:
            return False
        try:
            mtime = self.root.stat().st_mtime_ns
        except OSError:
            return False
        return mtime == scan[0] and scan[1] - mtime > RACY_NS

    # -- finding
    def get(self, ex_id: str) -> Exercise:
        with self._lock:
            if isinstance(ex_id, str) and ex_id not in self._all and _ID.match(ex_id):
                self._load()
            ex = self._all.get(ex_id) if isinstance(ex_id, str) else None
        if ex is None:
            raise ExerciseNotFound(f"no exercise {str(ex_id)[:80]!r}")
        ex.refresh()
        return ex

    def all(self) -> list[Exercise]:
        """Every exercise, newest first, each as its log stands now (other processes' changes included)."""
        out = self._known()
        for ex in out:
            ex.refresh()
        return out

    def _known(self) -> list[Exercise]:
        """Every exercise this process knows, with the folder listed again first if it may have changed."""
        if not self._listed():
            with self._lock:
                self._load()
        return sorted(list(self._all.values()), key=lambda e: e.id, reverse=True)

    def _unfinished(self) -> list[Exercise]:
        """The unfinished exercises, newest first, each as its log stands now. Finished is final, so a
        finished exercise's log is not read again for this (its ratings and notes are the report's business)."""
        out = []
        for ex in self._known():
            if not ex.finished:
                ex.refresh()
                if not ex.finished:
                    out.append(ex)
        return out

    def playing(self, name: str) -> Exercise | None:
        """The unfinished exercise ``name`` plays in, if any."""
        return next((e for e in self._unfinished() if name in e.players), None)

    def watching(self, name: str) -> Exercise | None:
        """The latest unfinished exercise ``name`` runs as its trainer."""
        return next((e for e in self._unfinished() if e.trainer == name), None)

    def of_user(self, name: str) -> Exercise | None:
        """The exercise whose world ``name`` sees on the dashboard: the one they play, or else the one they run
        (one read of the unfinished exercises for both)."""
        open_ = self._unfinished()
        return next((e for e in open_ if name in e.players), None) or \
            next((e for e in open_ if e.trainer == name), None)

    # -- the conductor
    def _ensure_thread(self) -> None:
        if not self._conduct:
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="yzt-exercises", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            waits = [0.5]
            for ex in self.all():
                if ex.phase != "running":
                    continue
                try:
                    ex.tick()
                except Exception:  # noqa: BLE001 - one exercise's failure never stops the others
                    log.exception("exercise %s: tick failed; ending it", ex.id)
                    try:
                        ex.end(reason="ended after an internal error (logged)")
                    except Exception:  # noqa: BLE001
                        log.exception("exercise %s: could not end", ex.id)
                due = ex.next_due_s()
                wait = ex.clock.wall_until(due) if due is not None else None
                if wait is not None:
                    waits.append(wait)
            self._wake.wait(max(0.02, min(waits)))
            self._wake.clear()

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for ex in self._all.values():
                ex.close()
            self._all.clear()


_registries: dict[str, Exercises] = {}
_keys: dict[str, str] = {}         # a var_dir as the settings give it -> its resolved path, resolved once
_guard = threading.Lock()


def _key(settings: Any) -> str:
    """The registry's key for ``settings.var_dir``: its resolved path, so two spellings of one folder share one
    registry. Resolved the first time a spelling is seen, not on every look-up (a dashboard finds a viewer's
    exercise on every request, and realpath's lstat of each part of the path was ~10% of a web worker's poll).
    A relative spelling depends on the working directory, so it is resolved every time."""
    raw = str(settings.var_dir)
    key = _keys.get(raw)
    if key is None:
        key = str(Path(raw).resolve())
        if Path(raw).is_absolute():
            _keys[raw] = key
    return key


def registry(settings: Any) -> Exercises:
    """The exercises of ``settings.var_dir`` in this process (made on first use)."""
    key = _key(settings)
    with _guard:
        book = _registries.get(key)
        if book is None:
            book = _registries[key] = Exercises(settings)
        return book


def forget(settings: Any) -> None:
    """Close and drop the registry of ``settings.var_dir`` (tests, a closing server)."""
    key = _key(settings)
    with _guard:
        book = _registries.pop(key, None)
    if book is not None:
        book.close()
