"""Playback: a finished exercise or a drill replayed on the map, minute by minute, with a time slider.

    frames = playback.Timeline.of_store(store, start)     # every incident's events, in exercise seconds
    frames.at(600)                                         # the incidents as they stood 10 minutes in
    playback.panel(prefix="trainer-pb")                    # source, slider, play, the map

At each moment the incidents are the fold of their events up to it (the same fold as a live incident):
incidents appear, their level changes colour, warned areas are drawn while in force and gone once
cancelled, and the group's size shows in the label. Sources: the exercises of this server, and the example
scenarios run as a drill (``yzt drill run``'s replay, kept in ``var_dir/playback/``). Ids start with the
prefix given (the trainer's page uses "trainer-pb"). Only a trainer reads a source
(``command.drills.trainers.require``). The trainer's page (``command.dashboard.trainer``) shows this panel;
this module imports nothing from it (the examples are ``command.drills.exercise.example_scenarios``).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import dash_leaflet as dl
from dash import Input, Output, State, callback, dcc, html, no_update
from dash.exceptions import PreventUpdate

from command.dashboard import runtime
from command.dashboard.security import guarded, principal
from command.drills import trainers
from command.drills.exercise import example_scenarios
from command.drills.registry import registry

LEVEL_COLOUR = {"I": "#d7191c", "II": "#f28c28", "III": "#e6b800", "IV": "#1f6fd1"}
PREFIX = "trainer-pb"


@dataclass(frozen=True)
class Frame:
    incident_id: str
    lat: float
    lon: float
    level: str
    state: str
    members: int
    warned: tuple[tuple[float, float, float], ...]     # (lat, lon, radius_m) of each warning in force
    label: str


class Timeline:
    """The events of every incident of a store, as exercise seconds from ``start``."""

    def __init__(self, events: dict[str, list[Any]], start: datetime) -> None:
        self.events = events
        self.start = start
        times = [self._s(e.at) for evs in events.values() for e in evs]
        self.end_s = max(times) if times else 0

    def _s(self, at: str) -> int:
        return int((datetime.fromisoformat(at) - self.start).total_seconds())

    @classmethod
    def of_store(cls, store: Any, start: datetime) -> Timeline:
        from command.response.timeline import from_record
        out: dict[str, list[Any]] = {}
        for e in store.events():
            out.setdefault(e.incident_id, []).append(from_record(e.kind, e.payload, at=e.at, actor=e.actor))
        return cls(out, start)

    def at(self, t_s: float) -> list[Frame]:
        from command.response.timeline import fold
        frames = []
        for iid, evs in self.events.items():
            upto = [e for e in evs if self._s(e.at) <= t_s]
            if not upto:
                continue
            s = fold(iid, upto)
            warned = []
            for a in s.active_alerts:
                circle = (a.area or {}).get("circle")
                if circle:
                    latlon, _, km = circle.partition(" ")
                    lat, lon = (float(x) for x in latlon.split(","))
                    warned.append((lat, lon, float(km) * 1000))
            p = s.location.point
            frames.append(Frame(iid, p.lat, p.lon, s.grade.level, s.state, len(s.group.members), tuple(warned),
                                f"{s.grade.level} · {len(s.group.members)} 成员 members"
                                + (" · 已结束 closed" if s.state == "closed" else "")))
        return frames


def panel(prefix: str = PREFIX) -> html.Div:
    return html.Div([
        html.Div([dcc.Dropdown(id=f"{prefix}-source", placeholder="回放来源 exercise or drill",
                               style={"minWidth": "320px"}),
                  html.Button("▶ 播放 Play", id=f"{prefix}-play", n_clicks=0),
                  html.Span(id=f"{prefix}-at", style={"fontFamily": "monospace"})],
                 style={"display": "flex", "gap": "8px", "alignItems": "center"}),
        dcc.Slider(id=f"{prefix}-slider", min=0, max=60, step=1, value=0, updatemode="drag",
                   tooltip={"placement": "bottom"}),
        dl.Map([dl.TileLayer(url="", opacity=0), dl.LayerGroup(id=f"{prefix}-layer")], id=f"{prefix}-map",
               center=[23.2, 113.4], zoom=8, style={"height": "360px"}),
        dcc.Interval(id=f"{prefix}-interval", interval=500, disabled=True),
    ])


def _sources() -> list[dict]:
    opts = [{"label": f"演练 exercise: {e.name} · {e.id}", "value": f"ex:{e.id}"}
            for e in registry(runtime.current().settings).all()]
    opts += [{"label": f"推演 drill: {name}", "value": f"drill:{name}"} for name in example_scenarios()]
    return opts


_DRILLS: dict[str, tuple[Any, datetime]] = {}


def _drill_store(name: str):
    """The example ``name`` replayed as a drill into a store of its own (kept, keyed by the file's hash)."""
    from command import drills
    from command.store.sqlite import Store
    path = example_scenarios().get(name)
    if path is None:
        raise PreventUpdate
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    if digest not in _DRILLS:
        settings = runtime.current().settings
        db = Path(settings.var_dir) / "playback" / f"{digest}.db"
        fresh = not db.exists()
        store = Store(db, durable=False)
        scenario = drills.load_scenario(path)
        if fresh or not store.incident_ids():
            drills.run_drill(scenario, settings=settings, store=store)
        _DRILLS[digest] = (store, scenario.start)
    return _DRILLS[digest]


def _timeline(source: str) -> Timeline:
    settings = runtime.current().settings
    if source.startswith("ex:"):
        trainers.require(settings, principal())
        ex = registry(settings).get(source[3:])
        return Timeline.of_store(ex.service.store, ex.scenario.start)
    if source.startswith("drill:"):
        trainers.require(settings, principal())
        store, start = _drill_store(source[6:])
        return Timeline.of_store(store, start)
    raise PreventUpdate


def layer(frames: list[Frame]) -> list:
    out: list = []
    for f in frames:
        colour = LEVEL_COLOUR.get(f.level, "#555")
        for lat, lon, r in f.warned:
            out.append(dl.Circle(center=[lat, lon], radius=r, color="#b3261e", fillOpacity=0.12, weight=2))
        out.append(dl.CircleMarker(center=[f.lat, f.lon], radius=9, color=colour, fillColor=colour,
                                   fillOpacity=0.3 if f.state == "closed" else 0.9,
                                   children=dl.Tooltip(f"{f.incident_id}: {f.label}")))
    return out


@callback(Output(f"{PREFIX}-source", "options"), Input("trainer-tick", "n_intervals"))
@guarded("view")
def sources(_n: Any):
    try:
        trainers.require(runtime.current().settings, principal())
    except ValueError:             # PermissionDenied: only a trainer sees the exercises to replay
        raise PreventUpdate from None
    return _sources()


@callback(Output(f"{PREFIX}-slider", "max"), Output(f"{PREFIX}-slider", "value"), Output(f"{PREFIX}-map", "viewport"),
          Input(f"{PREFIX}-source", "value"), prevent_initial_call=True)
@guarded("view")
def choose(source: str | None):
    if not source:
        raise PreventUpdate
    try:
        tl = _timeline(source)
    except ValueError:
        raise PreventUpdate from None
    frames = tl.at(tl.end_s)
    view = ({"center": [frames[0].lat, frames[0].lon], "zoom": 13} if frames else no_update)
    return max(1, (tl.end_s + 59) // 60), 0, view


@callback(Output(f"{PREFIX}-layer", "children"), Output(f"{PREFIX}-at", "children"),
          Input(f"{PREFIX}-slider", "value"), State(f"{PREFIX}-source", "value"), prevent_initial_call=True)
@guarded("view")
def show(minute: Any, source: str | None):
    if not source:
        raise PreventUpdate
    try:
        tl = _timeline(source)
    except ValueError:
        raise PreventUpdate from None
    frames = tl.at(float(minute or 0) * 60)
    return layer(frames), f"+{int(minute or 0)} min · {len(frames)} 事件 incidents"


@callback(Output(f"{PREFIX}-interval", "disabled"), Input(f"{PREFIX}-play", "n_clicks"),
          State(f"{PREFIX}-interval", "disabled"), prevent_initial_call=True)
@guarded("view")
def play(n: Any, disabled: bool | None):
    return not disabled


@callback(Output(f"{PREFIX}-slider", "value", allow_duplicate=True), Input(f"{PREFIX}-interval", "n_intervals"),
          State(f"{PREFIX}-slider", "value"), State(f"{PREFIX}-slider", "max"), prevent_initial_call=True)
@guarded("view")
def advance(_n: Any, minute: Any, top: Any):
    nxt = int(minute or 0) + 1
    if nxt > int(top or 0):
        raise PreventUpdate
    return nxt
