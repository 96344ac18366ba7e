"""Live exercises: a scenario's injects delivered to players on the dashboard, their response scored.

    from command.drills.registry import registry       # the exercises of a var_dir: command/drills/registry.py
    book = registry(settings)                           # one per var_dir, in this process
    ex = book.start(yaml_text, speed=60, players=["commander1"], trainer="trainer1")
    ex.pause(); ex.resume(); ex.jump(600); ex.fire_now("e3"); ex.add_inject({...}); ex.end()
    ex.state()                                           # the contract's state (contracts/exercise.md)
    ex.report()                                          # the after-action report (command.drills.evaluation)

The same scenario file as ``yzt drill run`` (contracts/drill-scenario.md), read the other way round: its
``report``, ``update`` and ``note`` events are injects, delivered at their exercise time as a dispatch
system posts them (a system Principal, ``source`` "exercise"); its ``alert``, ``cancel_alert``, ``close``,
``task`` and ``task_done`` events are what the players are expected to do by then, scored and never
performed by the system (docs/exercises.md).

Where an exercise lives (no schema of its own, only what the store already offers): a folder
``var_dir/exercises/<id>/`` with two SQLite stores, ``play.db`` (the players' incidents, opened through
``compose.open_drill``: Exercise service and exercise channels only) and ``control.db`` (the controller's
log: one stream ``exercise`` of small events, folded into the exercise's state by ``Exercise._apply``, so a
restarted server finds its exercises again). The live store never holds an exercise's incident, so the live
list cannot show one, and two exercises never see each other's.

Several processes may serve one var_dir (``yzt serve`` runs gunicorn workers): every process folds the same
control log, the clock included (each change records its offset and wall time), and every action takes
the exercise's file lock and reads the log again first, so an inject is delivered once whichever process
ticks, and a pause in one worker is a pause in all.

Time is exercise time (``command.drills.clock.ExerciseClock``): paused time never counts, so an inject due
during a pause arrives right after it and no target is late by a pause. An inject that fails (an address
not found) is recorded and the exercise goes on; ``end()`` always ends it.
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import re
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from command.drills.clock import ExerciseClock
from command.drills.scenario import Scenario, ScenarioEvent
from command.errors import CommandError, ScenarioError, SessionError
from command.response.timeline import iso

log = logging.getLogger(__name__)

INJECT_KINDS = ("report", "update", "note")
EXPECTED_KINDS = ("alert", "cancel_alert", "close", "task", "task_done")
STREAM = "exercise"                     # the one stream of control.db
DEFAULT_TOLERANCE_S = 300               # an expected action is in time up to 5 exercise minutes after its time
MAX_TOLERANCE_S = 6 * 3600
MAX_PLAYERS = 50
MAX_NOTE = 2000
_ID = re.compile(r"^ex\d{14}-[0-9a-f]{6}$")


class ExerciseNotFound(SessionError):
    """No exercise of that id in this var_dir."""


@dataclass(frozen=True)
class Inject:
    """One inject of the master scenario events list: ``key`` is "e<index in the file>" or "x<n>" (added)."""

    key: str
    event: ScenarioEvent
    added: bool = False

    @property
    def at_s(self) -> int:
        return self.event.at_s


@dataclass(frozen=True)
class Expected:
    """An action the players are expected to take: the file's event index, kind, incident, time, target."""

    event: int
    kind: str
    incident: str
    due_s: int
    target_s: int
    role: str | None = None        # a task's role or unit (task_done: its task's)
    task: str | None = None        # a task's scenario-local key
    text: str | None = None        # a task's text


@dataclass
class _Delivery:
    key: str
    at_s: float
    incident_id: str | None
    error: str | None
    fired: bool


@dataclass
class _State:
    """The controller's state: a fold over control.db (see ``Exercise._apply``)."""

    phase: str = "created"                        # running | paused | finished
    players: list[str] = field(default_factory=list)
    joined: dict[str, float] = field(default_factory=dict)     # player -> offset they joined at
    pauses: list[list[float | None]] = field(default_factory=list)   # [offset, wall_from, wall_to]
    jumps: list[tuple[float, float]] = field(default_factory=list)   # (from, to) offsets
    delivered: dict[str, _Delivery] = field(default_factory=dict)
    added: list[Inject] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)                # scenario key -> incident id
    notes: list[dict[str, Any]] = field(default_factory=list)         # trainer notes, never on a timeline
    ratings: dict[str, dict[str, Any]] = field(default_factory=dict)  # capability -> evaluator's rating
    ended_at_s: float | None = None
    end_reason: str = ""


def _key_of(index: int) -> str:
    return f"e{index}"


class Exercise:
    """One live exercise over its folder; see the module docstring. Thread-safe."""

    def __init__(self, folder: Path, scenario: Scenario, *, meta: dict[str, Any], settings: Any,
                 wall: Callable[[], float] = time.time) -> None:
        from command import compose
        from command.store.sqlite import Store
        self.folder = folder
        self.scenario = scenario
        self.meta = meta                              # id, name, speed, trainer, tolerance_s, created_at
        self.id: str = meta["id"]
        self.trainer: str = meta["trainer"]
        self.tolerance_s: int = int(meta["tolerance_s"])
        self._wall = wall
        self.clock = ExerciseClock(scenario.start, meta["speed"], wall=wall)
        self._lock = threading.RLock()
        self._depth = 0
        self._seen = 0                                # the last control.db seq folded
        self._lockfile = open(folder / "lock", "a+")  # noqa: SIM115 - held for the exercise's life
        self._s = _State(players=list(meta["players"]))
        self.control = Store(folder / "control.db")
        self._play_store = Store(folder / "play.db")
        self.app = compose.open_drill(settings, store=self._play_store, clock=self.clock)
        self.service = self.app.service(exercise=True)
        self.app.outbox.start()      # send_alert only queues: the exercise's own workers deliver (exercise channels)
        self.injects: tuple[Inject, ...] = tuple(Inject(_key_of(e.index), e) for e in scenario.events
                                                 if e.kind in INJECT_KINDS)
        self.expected: tuple[Expected, ...] = expected_actions(scenario, self.tolerance_s)

    # ------------------------------------------------------------------ the control log
    def _log(self, kind: str, payload: dict[str, Any], *, by: str | None = None) -> None:
        """Record a control event, then fold the log: the state is only ever what the log says."""
        payload = json.loads(json.dumps(payload, ensure_ascii=False))
        payload.setdefault("wall", self._wall())
        self.control.append_event(STREAM, kind, payload, at=iso(self.clock.now()), actor=by or self.trainer,
                                  source="exercise")
        self.refresh()

    def refresh(self) -> None:
        """Fold what the log gained since the last read (another process's actions too)."""
        with self._lock:
            for e in self.control.events(STREAM, since_seq=self._seen):
                self._apply(e.kind, e.payload)
                self._seen = e.seq

    @contextmanager
    def _locked(self):
        """This exercise to ourselves, across threads and processes, with the log read again first."""
        with self._lock:
            self._depth += 1
            try:
                if self._depth == 1:
                    fcntl.flock(self._lockfile.fileno(), fcntl.LOCK_EX)
                self.refresh()
                yield
            finally:
                if self._depth == 1:
                    fcntl.flock(self._lockfile.fileno(), fcntl.LOCK_UN)
                self._depth -= 1

    def _apply(self, kind: str, p: dict[str, Any]) -> None:
        s = self._s
        if kind == "ExerciseStarted":
            s.phase = "running"
            s.joined.update({n: 0.0 for n in s.players})
            self.clock.set_state(0.0, None)           # what is due at 0 is delivered before time runs
        elif kind == "ClockRunning":
            self.clock.set_state(p["offset"], p["wall"])
        elif kind == "ExercisePaused":
            s.phase = "paused"
            s.pauses.append([p["offset"], p["wall"], None])
            self.clock.set_state(p["offset"], None)
        elif kind == "ExerciseResumed":
            s.phase = "running"
            if s.pauses:
                s.pauses[-1][2] = p["wall"]
            self.clock.set_state(p["offset"], p["wall"])
        elif kind == "ExerciseJumped":
            s.jumps.append((p["from"], p["to"]))
            self.clock.set_state(p["to"], p["wall"] if self.clock.running else None)
        elif kind == "PlayerJoined":
            if p["name"] not in s.players:
                s.players.append(p["name"])
            s.joined[p["name"]] = p["offset"]
        elif kind == "InjectAdded":
            from command.drills.scenario import ScenarioEvent as SE
            ev = SE(**{k: v for k, v in p["event"].items()})
            s.added.append(Inject(p["key"], ev, added=True))
        elif kind == "InjectDelivered":
            s.delivered[p["key"]] = _Delivery(p["key"], p["offset"], p.get("incident_id"), p.get("error"),
                                              bool(p.get("fired")))
            if p.get("incident_id") and p.get("incident"):
                s.ids.setdefault(p["incident"], p["incident_id"])
        elif kind == "TrainerNote":
            s.notes.append({"at_s": p["offset"], "by": p["by"], "text": p["text"]})
        elif kind == "CapabilityRated":
            s.ratings[p["capability"]] = {"rating": p["rating"], "comment": p["comment"], "by": p["by"]}
        elif kind == "ExerciseEnded":
            self.clock.set_state(p["offset"], None)
            s.phase = "finished"
            s.ended_at_s = p["offset"]
            s.end_reason = p.get("reason", "")

    # ------------------------------------------------------------------ reading
    @property
    def phase(self) -> str:
        return self._s.phase

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def players(self) -> tuple[str, ...]:
        return tuple(self._s.players)

    @property
    def finished(self) -> bool:
        return self._s.phase == "finished"

    @property
    def incident_ids(self) -> dict[str, str]:
        return dict(self._s.ids)

    def all_injects(self) -> list[Inject]:
        return sorted([*self.injects, *self._s.added], key=lambda i: i.at_s)

    def offset_s(self) -> float:
        return self._s.ended_at_s if self.finished and self._s.ended_at_s is not None else self.clock.offset_s()

    def end_offset_s(self) -> int:
        """The exercise time after which nothing is left to happen: last inject, last target passed."""
        ends = [i.at_s for i in self.all_injects()] + [x.due_s + x.target_s for x in self.expected]
        return max(ends) if ends else 0

    def pending_injects(self) -> list[Inject]:
        return [i for i in self.all_injects() if i.key not in self._s.delivered]

    def next_due_s(self) -> float | None:
        pending = self.pending_injects()
        if pending:
            return float(pending[0].at_s)
        return None if self.finished else float(self.end_offset_s())

    def notes(self) -> list[dict[str, Any]]:
        """The trainer's notes and, among them in time order, every inject that failed ("inject e3 failed:
        ..." by 系统 system): what the trainer reads back on their page and in the report."""
        failed = [{"at_s": d.at_s, "by": "系统 system", "text": f"inject {d.key} failed 注入失败: {d.error}",
                   "inject": d.key} for d in self._s.delivered.values() if d.error]
        return sorted([*self._s.notes, *failed], key=lambda n: n["at_s"])

    def ratings(self) -> dict[str, dict[str, Any]]:
        return dict(self._s.ratings)

    def deliveries(self) -> dict[str, _Delivery]:
        return dict(self._s.delivered)

    def jumps(self) -> list[tuple[float, float]]:
        return list(self._s.jumps)

    def pauses(self) -> list[list[float | None]]:
        return [list(p) for p in self._s.pauses]

    def joined(self) -> dict[str, float]:
        return dict(self._s.joined)

    # ------------------------------------------------------------------ the controller's actions
    def begin(self) -> None:
        """Start: what is due at 0 is delivered at 0 (locating it takes no exercise time), then time runs."""
        with self._locked():
            self._log("ExerciseStarted", {"offset": 0.0, "speed": self.clock.speed, "players": self.players})
            self.tick()
            self._log("ClockRunning", {"offset": 0.0})

    def _live(self, what: str) -> None:
        if self.finished:
            raise SessionError(f"exercise {self.id} has ended: it cannot {what}")

    def pause(self, *, by: str | None = None) -> None:
        with self._locked():
            self._live("pause")
            if self._s.phase == "paused":
                return
            self.tick()                       # what was due before the pause is delivered before it
            wall = self._wall()
            self._log("ExercisePaused", {"offset": self.clock.offset_s(), "wall": wall}, by=by)

    def resume(self, *, by: str | None = None) -> None:
        with self._locked():
            self._live("resume")
            if self._s.phase != "paused":
                return
            self._log("ExerciseResumed", {"offset": self.clock.offset_s()}, by=by)
        self.tick()

    def jump(self, seconds: float, *, by: str | None = None) -> None:
        """Skip ``seconds`` of exercise time: what falls due in the skipped span arrives at once, and an
        expected action due in it is measured from where the jump lands (nobody could act in skipped time)."""
        with self._locked():
            self._live("jump")
            try:
                seconds = float(seconds)
            except (TypeError, ValueError):
                raise ScenarioError(f"jump {seconds!r}: a number of exercise seconds") from None
            if seconds > 30 * 86400:
                raise ScenarioError(f"jump of {seconds:g} s: at most 30 days")
            if not seconds > 0:
                raise ScenarioError(f"jump of {seconds!r} s: an exercise only jumps ahead (more than 0 s)")
            before = self.clock.offset_s()
            self._log("ExerciseJumped", {"from": before, "to": before + seconds}, by=by)
        self.tick()

    def join(self, name: str, *, by: str | None = None) -> None:
        """A player joining late (or at once): from now on they see the exercise and their actions count."""
        with self._locked():
            self._live("take a new player")
            if name in self._s.players:
                return
            if len(self._s.players) >= MAX_PLAYERS:
                raise ScenarioError(f"an exercise has at most {MAX_PLAYERS} players")
            self._log("PlayerJoined", {"name": name, "offset": self.clock.offset_s()}, by=by)

    def note(self, text: str, *, by: str) -> None:
        """A trainer's note: kept in control.db, never on the players' timeline."""
        text = (text or "").strip()
        if not text:
            raise ScenarioError("a note needs some text")
        if len(text) > MAX_NOTE:
            raise ScenarioError(f"a note is at most {MAX_NOTE} characters")
        with self._locked():
            self._log("TrainerNote", {"offset": self.offset_s(), "by": by, "text": text}, by=by)

    def rate(self, capability: str, rating: str, comment: str, *, by: str) -> None:
        """The evaluator's rating of a capability (HSEEP P/S/M/U), which replaces the computed one."""
        from command.drills import evaluation
        if capability not in evaluation.CAPABILITIES:
            raise ScenarioError(f"capability {capability!r}: one of {', '.join(evaluation.CAPABILITIES)}")
        if rating not in evaluation.RATINGS:
            raise ScenarioError(f"rating {rating!r}: one of {', '.join(evaluation.RATINGS)}")
        comment = (comment or "").strip()
        if not comment:
            raise ScenarioError("an adjusted rating needs a comment saying why")
        if len(comment) > MAX_NOTE:
            raise ScenarioError(f"a comment is at most {MAX_NOTE} characters")
        with self._locked():
            self._log("CapabilityRated", {"capability": capability, "rating": rating, "comment": comment,
                                          "by": by}, by=by)

    def fire_now(self, key: str, *, by: str | None = None) -> None:
        """Deliver an inject now instead of at its time."""
        with self._locked():
            self._live("fire an inject")
            inject = next((i for i in self.all_injects() if i.key == key), None)
            if inject is None:
                raise ScenarioError(f"no inject {key!r} (injects: {', '.join(i.key for i in self.all_injects())})")
            if key in self._s.delivered:
                raise SessionError(f"inject {key} was already delivered")
            self._deliver(inject, fired=True, by=by)

    def add_inject(self, spec: dict[str, Any], *, by: str | None = None) -> str:
        """An inject that is not in the file (report, update or note), checked as strictly as the file;
        delivered at its ``at`` (default: now). Returns its key."""
        with self._locked():
            self._live("take a new inject")
            ev = self._check_added(spec)
            key = f"x{len(self._s.added) + 1}"
            self._log("InjectAdded", {"key": key, "event": dataclasses.asdict(ev)}, by=by)
        self.tick()
        return key

    def _check_added(self, spec: dict[str, Any]) -> ScenarioEvent:
        """The inject checked as the file is: the file's events with the inject last, loaded strictly
        (unknown keys, bad fields, an update before its report or after the close are refused)."""
        if not isinstance(spec, dict):
            raise ScenarioError("an inject is a mapping: kind, incident and the kind's fields")
        spec = dict(spec)
        spec.setdefault("at", int(self.clock.offset_s()))
        if spec.get("kind") not in INJECT_KINDS:
            raise ScenarioError(f"kind {spec.get('kind')!r}: an added inject is one of {', '.join(INJECT_KINDS)}")
        events = sorted([*self.scenario.events, *(i.event for i in self._s.added)], key=lambda e: e.at_s)
        raw = [{"at": e.at_s, "kind": e.kind, "incident": e.incident, "actor": e.actor, **e.fields}
               for e in events]
        doc = {"format": 1, "name": self.scenario.name, "start": self.scenario.start.isoformat(),
               "events": raw + [spec]}
        try:
            checked = scenario_from_text(json.dumps(doc, ensure_ascii=False), label="added inject")
        except ScenarioError as e:
            msg = str(e).replace(f"event {len(raw) + 1} ", "").replace(f"event {len(raw) + 1}:", "")
            raise ScenarioError(msg) from None
        ev = next(e for e in checked.events if e.index == len(raw) + 1)
        return dataclasses.replace(ev, index=len(self.scenario.events) + len(self._s.added) + 1, line=None)

    def end(self, *, by: str | None = None, reason: str = "ended by the trainer") -> None:
        """End the exercise, whatever state it is in and whatever failed; idempotent."""
        with self._locked():
            if self.finished:
                return
            try:
                self.tick(final=True)
            except Exception:               # noqa: BLE001 - an exercise always ends; the error is logged
                log.exception("exercise %s: last tick failed while ending", self.id)
            self._log("ExerciseEnded", {"offset": self.clock.offset_s(), "reason": reason}, by=by)

    # ------------------------------------------------------------------ time passing
    def tick(self, *, final: bool = False) -> int:
        """Deliver every inject now due; end the exercise once nothing is left to happen. Returns how many
        injects were delivered."""
        n = 0
        with self._locked():
            if self.finished or self._s.phase == "created":
                return 0
            now = self.clock.offset_s()
            for inject in self.pending_injects():
                if inject.at_s > now:
                    break
                self._deliver(inject, fired=False, by=None)
                n += 1
            if not final and not self.pending_injects() and now >= self.end_offset_s():
                self.end(reason="the scenario's last event and target have passed")
        return n

    def _deliver(self, inject: Inject, *, fired: bool, by: str | None) -> None:
        """Post one inject as a dispatch system would; a failure is recorded and the exercise goes on."""
        from command.drills.replay import _apply
        from command.security.auth import Principal
        from incidents.errors import IncidentError
        from layers.errors import LayerError
        ev = inject.event
        system = Principal(name=ev.actor, role="officer", kind="system", source="exercise")
        ids = dict(self._s.ids)
        error = None
        try:
            _apply(dataclasses.replace(ev, actor=system), self.service, ids)
        except (CommandError, IncidentError, LayerError) as e:
            error = str(e).splitlines()[0] if str(e) else type(e).__name__
        except Exception as e:  # noqa: BLE001 - a bug in one inject must not stop the exercise
            log.exception("exercise %s: inject %s failed", self.id, inject.key)
            error = f"internal error ({type(e).__name__})"
        self._log("InjectDelivered", {"key": inject.key, "offset": self.clock.offset_s(), "fired": fired,
                                      "incident": ev.incident, "incident_id": ids.get(ev.incident),
                                      "kind": ev.kind, "error": error}, by=by)

    # ------------------------------------------------------------------ answers
    def state(self) -> dict[str, Any]:
        """The contract's state of the exercise (contracts/exercise.md), plus the controller's view."""
        from command.drills import evaluation
        with self._lock:
            self.refresh()
            offset = self.offset_s()
            rows = evaluation.score(self)
            injects = self.all_injects()
            delivered = self._s.delivered
            return {
                "id": self.id, "name": self.name, "state": self._s.phase if self._s.phase != "created" else "paused",
                "clock": iso(self.clock.at(offset)), "offset_s": int(offset), "speed": self.clock.speed,
                "trainer": self.trainer, "players": list(self._s.players),
                "injects": {"total": len(injects), "delivered": len(delivered),
                            "failed": sum(1 for d in delivered.values() if d.error)},
                "msel": [{"key": i.key, "kind": i.event.kind, "incident": i.event.incident,
                          "due": iso(self.clock.at(i.at_s)), "added": i.added,
                          "delivered_at": (iso(self.clock.at(delivered[i.key].at_s)) if i.key in delivered
                                           else None),
                          "fired": bool(i.key in delivered and delivered[i.key].fired),
                          "error": delivered[i.key].error if i.key in delivered else None} for i in injects],
                "expected": [evaluation.contract_row(evaluation.with_times(r, lambda o: iso(self.clock.at(o))))
                             for r in rows],
                "incidents": dict(self._s.ids),
            }

    def report(self) -> dict[str, Any]:
        from command.drills import evaluation
        with self._lock:
            self.refresh()
            return evaluation.build_report(self)

    def close(self) -> None:
        self._lockfile.close()
        self.app.close()
        self._play_store.close()
        self.control.close()


def expected_actions(scenario: Scenario, tolerance_s: int) -> tuple[Expected, ...]:
    """The scenario's expected player actions; a task_done carries its task's role and text."""
    tasks = {(e.incident, e.fields["task"]): e for e in scenario.events if e.kind == "task" and "task" in e.fields}
    out = []
    for e in scenario.events:
        if e.kind not in EXPECTED_KINDS:
            continue
        task = e if e.kind == "task" else tasks.get((e.incident, e.fields.get("task")))
        out.append(Expected(e.index, e.kind, e.incident, e.at_s, tolerance_s,
                            role=task.fields["role"] if task else None, task=e.fields.get("task"),
                            text=task.fields["text"] if task else None))
    return tuple(out)


# ---------------------------------------------------------------------- scenarios: the examples, from text
EXAMPLE_DIRS = (Path(__file__).resolve().parents[2] / "data" / "scenarios",
                Path(__file__).resolve().parents[3] / "shared" / "scenarios")


def example_scenarios() -> dict[str, Path]:
    """The example scenario files a trainer may start or replay, by file name (the bundled ones first)."""
    out: dict[str, Path] = {}
    for d in EXAMPLE_DIRS:
        if d.is_dir():
            for f in sorted(d.glob("*.y*ml")) + sorted(d.glob("*.json")):
                out.setdefault(f.name, f)
    return out


def scenario_from_text(text: str, *, label: str = "scenario") -> Scenario:
    """A scenario given as YAML (or JSON) text, checked as strictly as a file; refusals name ``label``."""
    from command.drills.scenario import MAX_BYTES, load_scenario
    if not isinstance(text, str) or not text.strip():
        raise ScenarioError(f"{label}: the scenario's YAML text is empty")
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise ScenarioError(f"{label}: over the {MAX_BYTES:,}-byte limit for a scenario")
    tmp = Path(tempfile.mkdtemp(prefix="yzt-scenario-"))
    try:
        path = tmp / "scenario.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            sc = load_scenario(path)
        except ScenarioError as e:
            raise ScenarioError(str(e).replace(str(path), label)) from None
        return dataclasses.replace(sc, path=label)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
