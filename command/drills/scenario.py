"""Drill scenario files, loaded strictly: the whole file is valid, or nothing runs.

The file format is the contract of ``contracts/drill-scenario.md``::

    from command import drills
    scenario = drills.load_scenario("scenarios/tianhe-mall-gas-explosion.yaml")   # ScenarioError if bad

A refused file names the file, the event (counted from 1, as a trainer reads the file), its YAML line and
the field: ``scenarios/x.yaml: event 3 (line 21): casualties.deaths: must be a whole number >= 0``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from command.errors import ScenarioError
from settings import YamlLines, field_message, field_path, read_yaml, shown, validated

KINDS = ("report", "update", "alert", "cancel_alert", "close", "note", "task", "task_done")
FIELDS_OF_KIND: dict[str, set[str]] = {
    "report": {"address", "point", "type", "casualties", "economic_loss_cny", "description"},
    "update": {"type", "casualties", "economic_loss_cny", "description"},
    "alert": {"radius_m", "instruction", "instruction_en"},
    "cancel_alert": set(),
    "close": set(),
    "note": {"text"},
    "task": {"task", "role", "text"},      # assign a task to a role or unit (docs/exercises.md)
    "task_done": {"task"},                 # the task of that scenario-local key is done
}
COMMON = {"at", "kind", "incident", "actor"}
_TIME = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
ACTOR = "演练导调"
MAX_BYTES = 1_000_000          # a scenario is a few kilobytes; bigger files are refused unread
MAX_NODES = 100_000            # YAML nodes once aliases are expanded (refuses "billion laughs" bombs)
MAX_AT_S = 30 * 86400          # a drill's timeline spans at most 30 days


# ---------------------------------------------------------------- the file's shape

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, allow_inf_nan=False)


class PointIn(_Strict):
    lon: float
    lat: float
    crs: Literal["wgs84", "gcj02", "bd09"] = "wgs84"


class CasualtiesIn(_Strict):
    deaths: int | None = Field(default=None, ge=0, strict=True)       # omitted: 0 in a report,
    serious_injuries: int | None = Field(default=None, ge=0, strict=True)  # unchanged in an update
    missing: int | None = Field(default=None, ge=0, strict=True)


class EventIn(_Strict):
    at: int | float | str
    kind: Literal["report", "update", "alert", "cancel_alert", "close", "note", "task", "task_done"]
    incident: str = Field(min_length=1)
    actor: str | None = None
    address: str | None = Field(default=None, min_length=1)
    point: PointIn | None = None
    type: str | None = None
    casualties: CasualtiesIn | None = None
    economic_loss_cny: float | None = Field(default=None, ge=0)
    description: str | None = None
    radius_m: float | None = Field(default=None, gt=0)
    instruction: str | None = None
    instruction_en: str | None = None
    text: str | None = None
    task: str | None = Field(default=None, min_length=1, max_length=64)
    role: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("incident", "task", mode="before")
    @classmethod
    def _key(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class ExpectIn(_Strict):
    incident: str
    level: Literal["I", "II", "III", "IV"] | None = None
    district_adcode: str | None = Field(default=None, pattern=r"^\d{6}$")

    @field_validator("incident", "district_adcode", mode="before")
    @classmethod
    def _digits(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class ScenarioIn(_Strict):
    format: Literal[1]
    name: str = Field(min_length=1)
    start: datetime
    events: list[EventIn] = Field(min_length=1)
    expect: list[ExpectIn] = []

    @field_validator("start", mode="before")
    @classmethod
    def _offset(cls, v: Any) -> Any:
        if isinstance(v, datetime):
            v = v.isoformat()
        if not isinstance(v, str) or not re.search(r"([+-]\d\d:\d\d|Z)$", v.strip()):
            raise ValueError("must be an ISO 8601 time with its UTC offset, e.g. 2026-03-14T09:00:00+08:00")
        return v


# ---------------------------------------------------------------- loaded scenario

@dataclass(frozen=True)
class ScenarioEvent:
    index: int                 # 1-based position in the file
    line: int | None           # YAML line of the event
    at_s: int
    kind: str
    incident: str
    fields: dict[str, Any]     # the kind's fields as given (point/casualties as dicts)
    actor: str = ACTOR


@dataclass(frozen=True)
class Scenario:
    path: str
    name: str
    start: datetime
    events: tuple[ScenarioEvent, ...]          # in replay order (by at_s, stable)
    expect: tuple[dict[str, Any], ...]


def parse_time(value: Any) -> int:
    """Seconds from 0, 90, "90s", "5m", "1h30m"; ValueError with the accepted forms otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time: use seconds or 90s, 5m, 1h30m")
    if isinstance(value, (int, float)):
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"{value!r} is not a time: must be >= 0 seconds")
        return _bounded(int(value), value)
    text = str(value).strip()
    m = _TIME.match(text)
    if text.isascii() and text.isdigit():
        return _bounded(int(text[:12]) if len(text) <= 12 else MAX_AT_S + 1, value)
    if not text or not m or not any(m.groups()) or len(text) > 24:
        raise ValueError(f"{shown(value)} is not a time: use seconds or 90s, 5m, 1h30m")
    h, mi, s = (int(g) if g else 0 for g in m.groups())
    return _bounded(h * 3600 + mi * 60 + s, value)


def _bounded(seconds: int, value: Any) -> int:
    if seconds > MAX_AT_S:
        raise ValueError(f"{shown(value)} is not a time within a drill: at most {MAX_AT_S // 86400} days")
    return seconds


class _Shape(ValueError):
    """A file whose structure is refused before validation (bomb, cycle, duplicate or complex key)."""


def _read(path: Path) -> tuple[Any, YamlLines]:
    return read_yaml(path, what="", error=ScenarioError, max_bytes=MAX_BYTES, max_nodes=MAX_NODES)


def _where(path: Path, lines: YamlLines, loc: tuple) -> str:
    """"file: event 3 (line 21): casualties.deaths" for a location inside the scenario."""
    head = str(path)
    if len(loc) >= 2 and loc[0] == "events" and isinstance(loc[1], int):
        line = lines.line(loc)
        head += f": event {loc[1] + 1}" + (f" (line {line})" if line else "")
        rest = loc[2:]
    else:
        line = lines.line(loc)
        head += f": line {line}" if line else ""
        rest = loc
    field = field_path(rest)
    return f"{head}: {field}" if field else head


def _message(err: dict[str, Any]) -> str:
    """The shared wording (settings.field_message), in a trainer's words for the fields they type most."""
    kind, loc = err["type"], err["loc"]
    last = str(loc[-1]) if loc else ""
    if kind not in ("extra_forbidden", "missing"):
        if last in ("deaths", "serious_injuries", "missing"):
            return "must be a whole number >= 0"
        if last == "kind":
            return f"must be one of {', '.join(KINDS)}, got {shown(err.get('input'))}"
        if last == "lat" or last == "lon":
            return f"must be a number, got {shown(err.get('input'))}"
    return field_message(err)


def _no_branch(loc: tuple) -> tuple:
    """pydantic names the union's branch of a time: at.int -> at."""
    return loc[:-1] if len(loc) >= 2 and loc[-2] == "at" and loc[-1] in ("int", "float", "str") else loc


def _refuse(path: Path, lines: YamlLines, loc: tuple, message: str) -> ScenarioError:
    return ScenarioError(f"{_where(path, lines, loc)}: {message}")


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file (YAML or JSON). Refuses the whole file with one clear line."""
    path = Path(path)
    data, lines = _read(path)
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: expected a mapping with format, name, start and events")
    model = validated(ScenarioIn, data, path=path, lines=lines, what="", error=ScenarioError,
                      where=lambda loc: _where(path, lines, _no_branch(loc)), message=_message)
    events = [_check_event(path, lines, i, ev, data["events"][i]) for i, ev in enumerate(model.events)]
    ordered = sorted(events, key=lambda e: e.at_s)
    _check_order(path, lines, ordered)
    keys = {e.incident for e in events if e.kind == "report"}
    for j, ex in enumerate(model.expect):
        if ex.incident not in keys:
            raise _refuse(path, lines, ("expect", j, "incident"), f"incident {ex.incident!r} is never reported")
    return Scenario(path=str(path), name=model.name, start=model.start, events=tuple(ordered),
                    expect=tuple(ex.model_dump(exclude_none=True) for ex in model.expect))


def _check_event(path: Path, lines: YamlLines, i: int, ev: EventIn, raw: dict) -> ScenarioEvent:
    from incidents.errors import CoordinateError
    from incidents.grading import incident_types
    from incidents.model import Point
    loc = ("events", i)
    try:
        at_s = parse_time(ev.at)
    except ValueError as e:
        raise _refuse(path, lines, loc + ("at",), str(e)) from None
    given = {k for k in raw if k not in COMMON}
    foreign = sorted(given - FIELDS_OF_KIND[ev.kind])
    if foreign:
        raise _refuse(path, lines, loc + (foreign[0],), f"not a field of a {ev.kind} event "
                      f"(allowed: {', '.join(sorted(FIELDS_OF_KIND[ev.kind] | COMMON))})")
    if ev.type is not None and ev.type not in incident_types():
        raise _refuse(path, lines, loc + ("type",), f"unknown incident type {ev.type!r} "
                      f"(known: {', '.join(sorted(incident_types()))})")
    if ev.kind == "report":
        if ev.type is None:
            raise _refuse(path, lines, loc + ("type",), "a report needs a type")
        if ev.address is None and ev.point is None:
            raise _refuse(path, lines, loc + ("address",), "a report needs an address or a point")
    if ev.kind == "task":
        for need, what in (("role", "the role or unit it goes to"), ("text", "what is to be done")):
            if not (getattr(ev, need) or "").strip():
                raise _refuse(path, lines, loc + (need,), f"a task needs {need}: {what}")
    if ev.kind == "task_done" and ev.task is None:
        raise _refuse(path, lines, loc + ("task",), "a task_done needs task: the key of a task event before it")
    if ev.point is not None:
        try:
            Point(ev.point.lon, ev.point.lat, ev.point.crs)
        except CoordinateError as e:
            field = "lat" if str(e).startswith("lat") else "lon" if str(e).startswith("lon") else "crs"
            raise _refuse(path, lines, loc + ("point", field), str(e)) from None
    fields = ev.model_dump(exclude_none=True, exclude=COMMON)
    return ScenarioEvent(index=i + 1, line=lines.line(loc), at_s=at_s, kind=ev.kind, incident=ev.incident,
                         fields=fields, actor=ev.actor or ACTOR)


def _check_order(path: Path, lines: YamlLines, ordered: list[ScenarioEvent]) -> None:
    """An incident is reported once, before anything else happens to it, and nothing follows its close."""
    reported: set[str] = set()
    closed: set[str] = set()
    alerted: set[str] = set()
    tasks: dict[tuple[str, str], bool] = {}          # (incident, task key) -> done
    for e in ordered:
        loc = ("events", e.index - 1, "kind")
        if e.kind == "report":
            if e.incident in reported:
                raise _refuse(path, lines, loc, f"incident {e.incident!r} is already reported")
            reported.add(e.incident)
            continue
        if e.incident not in reported:
            raise _refuse(path, lines, ("events", e.index - 1, "incident"),
                          f"{e.kind} before the report of incident {e.incident!r}")
        if e.incident in closed:
            raise _refuse(path, lines, loc, f"{e.kind} after incident {e.incident!r} is closed")
        if e.kind == "alert":
            alerted.add(e.incident)
        elif e.kind == "cancel_alert":
            if e.incident not in alerted:
                raise _refuse(path, lines, loc, f"cancel_alert but incident {e.incident!r} has no alert before it")
            alerted.discard(e.incident)
        elif e.kind == "close":
            closed.add(e.incident)
        elif e.kind in ("task", "task_done"):
            _check_task(path, lines, e, tasks)


def _check_task(path: Path, lines: YamlLines, e: ScenarioEvent, tasks: dict[tuple[str, str], bool]) -> None:
    """A task key names one task of its incident; a task_done follows its task, once."""
    key = e.fields.get("task")
    loc = ("events", e.index - 1, "task")
    if key is None:
        return
    if e.kind == "task":
        if (e.incident, key) in tasks:
            raise _refuse(path, lines, loc, f"incident {e.incident!r} already has a task {key!r}")
        tasks[(e.incident, key)] = False
        return
    if (e.incident, key) not in tasks:
        raise _refuse(path, lines, loc, f"task_done before a task {key!r} of incident {e.incident!r}")
    if tasks[(e.incident, key)]:
        raise _refuse(path, lines, loc, f"task {key!r} of incident {e.incident!r} is already done")
    tasks[(e.incident, key)] = True


