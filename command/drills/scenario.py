"""Drill scenario files, loaded strictly: the whole file is valid, or nothing runs.

The file format is the contract of ``contracts/drill-scenario.md``::

    from command import drills
    scenario = drills.load_scenario("scenarios/tianhe-mall-gas-explosion.yaml")   # ScenarioError if bad

A refused file names the file, the event (counted from 1, as a trainer reads the file), its YAML line and
the field: ``scenarios/x.yaml: event 3 (line 21): casualties.deaths: must be a whole number >= 0``.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from command.errors import ScenarioError
from incidents.coords import shown

KINDS = ("report", "update", "alert", "cancel_alert", "close", "note")
FIELDS_OF_KIND: dict[str, set[str]] = {
    "report": {"address", "point", "type", "casualties", "economic_loss_cny", "description"},
    "update": {"type", "casualties", "economic_loss_cny", "description"},
    "alert": {"radius_m", "instruction", "instruction_en"},
    "cancel_alert": set(),
    "close": set(),
    "note": {"text"},
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
    kind: Literal["report", "update", "alert", "cancel_alert", "close", "note"]
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

    @field_validator("incident", mode="before")
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


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Shape(f"duplicate key {shown(k)}")
        out[k] = v
    return out


class _Lines:
    """YAML line numbers of every node, keyed by path (('events', 2, 'casualties', 'deaths'))."""

    def __init__(self, node: yaml.Node | None) -> None:
        self.lines: dict[tuple, int] = {}
        self.nodes = 0
        self.open: set[int] = set()     # nodes being walked: an alias back to one of them is a cycle
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, path: tuple) -> None:
        """Record lines; refuse cycles, expansion past MAX_NODES, duplicate or non-scalar keys (_Shape)."""
        line = node.start_mark.line + 1
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Shape(f"more than {MAX_NODES:,} YAML nodes once aliases are expanded "
                         "(an alias bomb?): refused")
        if id(node) in self.open:
            raise _Shape(f"line {line}: an alias refers to a node that contains it: refused")
        self.lines.setdefault(path, line)
        self.open.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for k, v in node.value:
                kline = k.start_mark.line + 1
                if not isinstance(k, yaml.ScalarNode):
                    raise _Shape(f"line {kline}: a key must be a plain name, not a list or mapping")
                if k.value in seen and k.value != "<<":
                    raise _Shape(f"line {kline}: duplicate key {shown(k.value)}")
                seen.add(k.value)
                self.lines.setdefault(path + (k.value,), kline)
                if not isinstance(v, yaml.ScalarNode):   # a scalar's line is its key's line
                    self._walk(v, path + (k.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, path + (i,))
        self.open.discard(id(node))

    def line(self, path: tuple) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml when present: the same documents, ~10x faster


def _yaml(text: str) -> tuple[Any, _Lines]:
    """Parse once: the node tree gives the lines (and refuses alias bombs and cycles) before it is built."""
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        lines = _Lines(node)
        return (None if node is None else loader.construct_document(node)), lines
    finally:
        loader.dispose()


def _read(path: Path) -> tuple[Any, _Lines]:
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ScenarioError(f"{path}: {size:,} bytes is over the {MAX_BYTES:,}-byte limit for a scenario")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        why = str(e).splitlines()[0][:120] if str(e) else ""
        raise ScenarioError(f"{path}: cannot read the scenario ({e.__class__.__name__}: {why})") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text, object_pairs_hook=_no_duplicates), _Lines(None)
        return _yaml(text)
    except json.JSONDecodeError as e:
        raise ScenarioError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        why = " ".join(str(getattr(e, "problem", None) or e).split())[:120]
        raise ScenarioError(f"{path}: {where}not valid YAML ({why})") from None
    except _Shape as e:
        raise ScenarioError(f"{path}: {e}") from None
    except RecursionError:
        raise ScenarioError(f"{path}: nested too deeply to be a scenario") from None
    except ValueError as e:   # a date like 2024-02-30, an integer of thousands of digits
        why = " ".join(str(e).split())[:120]
        raise ScenarioError(f"{path}: a value cannot be read ({why})") from None


def _where(path: Path, lines: _Lines, loc: tuple) -> str:
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
    field = ".".join(_part(p) for p in rest if not (isinstance(p, str) and "[" in p))
    return f"{head}: {field}" if field else head


def _part(p: Any) -> str:
    text = str(p)
    return text if text.isprintable() and len(text) <= 40 else shown(text, 30)


def _message(err: dict[str, Any]) -> str:
    kind, loc = err["type"], err["loc"]
    last = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    if last in ("deaths", "serious_injuries", "missing"):
        return "must be a whole number >= 0"
    if last == "kind":
        return f"must be one of {', '.join(KINDS)}, got {shown(err.get('input'))}"
    if last == "lat" or last == "lon":
        return f"must be a number, got {shown(err.get('input'))}"
    if kind == "literal_error":
        return f"{err['msg'].lower()}, got {shown(err.get('input'))}"
    msg = " ".join(err["msg"].removeprefix("Value error, ").split())
    return msg if len(msg) <= 160 else msg[:157] + "..."


def _refuse(path: Path, lines: _Lines, loc: tuple, message: str) -> ScenarioError:
    return ScenarioError(f"{_where(path, lines, loc)}: {message}")


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file (YAML or JSON). Refuses the whole file with one clear line."""
    path = Path(path)
    data, lines = _read(path)
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: expected a mapping with format, name, start and events")
    try:
        model = ScenarioIn.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = tuple(first["loc"])
        if len(loc) >= 2 and loc[-2] == "at" and loc[-1] in ("int", "float", "str"):
            loc = loc[:-1]          # pydantic names the union's branch: at.int -> at
        raise _refuse(path, lines, loc, _message(first)) from None
    events = [_check_event(path, lines, i, ev, data["events"][i]) for i, ev in enumerate(model.events)]
    ordered = sorted(events, key=lambda e: e.at_s)
    _check_order(path, lines, ordered)
    keys = {e.incident for e in events if e.kind == "report"}
    for j, ex in enumerate(model.expect):
        if ex.incident not in keys:
            raise _refuse(path, lines, ("expect", j, "incident"), f"incident {ex.incident!r} is never reported")
    return Scenario(path=str(path), name=model.name, start=model.start, events=tuple(ordered),
                    expect=tuple(ex.model_dump(exclude_none=True) for ex in model.expect))


def _check_event(path: Path, lines: _Lines, i: int, ev: EventIn, raw: dict) -> ScenarioEvent:
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
    if ev.point is not None:
        try:
            Point(ev.point.lon, ev.point.lat, ev.point.crs)
        except CoordinateError as e:
            field = "lat" if str(e).startswith("lat") else "lon" if str(e).startswith("lon") else "crs"
            raise _refuse(path, lines, loc + ("point", field), str(e)) from None
    fields = ev.model_dump(exclude_none=True, exclude=COMMON)
    return ScenarioEvent(index=i + 1, line=lines.line(loc), at_s=at_s, kind=ev.kind, incident=ev.incident,
                         fields=fields, actor=ev.actor or ACTOR)


def _check_order(path: Path, lines: _Lines, ordered: list[ScenarioEvent]) -> None:
    """An incident is reported once, before anything else happens to it, and nothing follows its close."""
    reported: set[str] = set()
    closed: set[str] = set()
    alerted: set[str] = set()
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


