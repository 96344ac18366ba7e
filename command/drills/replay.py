"""Replay a drill scenario through ResponseService as an Exercise, and build the contract's drill report.

    from command import drills
    report = drills.run_drill(drills.load_scenario(path))   # virtual clock: same file -> same report
"""
from __future__ import annotations

import functools
import time
from datetime import datetime
from typing import Any

from command.drills.scenario import Scenario, ScenarioEvent
from command.errors import CommandError, ScenarioError
from incidents.errors import IncidentError
from layers.errors import LayerError


def run_drill(scenario: Scenario, *, settings: Any, store=None, speed: float | None = None) -> dict[str, Any]:
    """Replay ``scenario`` as an Exercise and return the contract's drill report.

    ``settings`` are the door's; the drill keeps only their exercise channels (``compose.open_drill``).
    ``speed`` None: virtual clock, no waiting (deterministic). ``speed`` N: waits (real sleeps) between
    events, the scenario's gaps divided by N; the recorded times stay the scenario's own.
    """
    from command import compose
    from command.response.timeline import VirtualClock
    if speed is not None and not speed > 0:
        raise ScenarioError(f"speed {speed!r}: must be more than 0 (or none for the virtual clock)")
    clock = VirtualClock(scenario.start)
    app = compose.open_drill(settings, store=store, clock=clock)
    try:
        svc = app.service(exercise=True)
        ids, errors = _replay(scenario, svc, clock, speed)
        return _report(scenario, svc, ids, errors)
    finally:
        app.close()


def _replay(scenario: Scenario, svc, clock, speed: float | None) -> tuple[dict[str, str], list[dict]]:
    ids: dict[str, str] = {}
    tasks: dict[tuple[str, str], str] = {}          # (incident key, task key) -> the service's task id
    errors: list[dict] = []
    began, last = time.monotonic(), 0
    for ev in scenario.events:
        if speed is not None:
            wait = began + ev.at_s / speed - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        clock.set_offset(max(ev.at_s, last))
        last = ev.at_s
        try:
            _apply(ev, svc, ids, tasks)
        except (CommandError, IncidentError, LayerError) as e:
            # A refusal during the replay (an address not found, no exercise channel...): the drill goes on,
            # the report lists it, and the exit code is 1.
            errors.append({"event": ev.index, "line": ev.line, "incident": ev.incident, "kind": ev.kind,
                           "error": str(e)})
    return ids, errors


def _apply(ev: ScenarioEvent, svc, ids: dict[str, str], tasks: dict[tuple[str, str], str] | None = None) -> None:
    """Perform one scenario event through the service (``tasks``: the task keys the replay has met)."""
    from incidents.model import Casualties, IncidentReport, Point
    f = ev.fields
    cas = Casualties(**f["casualties"]) if "casualties" in f else None   # omitted counts: 0
    if ev.kind == "report":
        point = Point(**f["point"]) if "point" in f else None
        rep = IncidentReport(type=f["type"], address=f.get("address"), point=point,
                             casualties=cas or Casualties(), economic_loss_cny=f.get("economic_loss_cny", 0),
                             description=f.get("description", ""))
        ids[ev.incident] = svc.report(rep, actor=ev.actor).id
        return
    iid = ids.get(ev.incident)
    if iid is None:
        raise ScenarioError(f"event {ev.index}: incident {ev.incident!r} was not opened (its report failed)")
    if ev.kind == "update":
        if cas is not None and "casualties" in f:
            cur = svc.get(iid).casualties
            given = f["casualties"]
            cas = Casualties(**{k: given.get(k, getattr(cur, k)) for k in ("deaths", "serious_injuries",
                                                                           "missing")})
        svc.update(iid, actor=ev.actor, type=f.get("type"), casualties=cas,
                   economic_loss_cny=f.get("economic_loss_cny"), description=f.get("description"))
    elif ev.kind == "alert":
        draft = svc.draft_alert(iid, actor=ev.actor, radius_m=f.get("radius_m"),
                                instruction_zh=f.get("instruction", ""), instruction_en=f.get("instruction_en", ""))
        svc.send_alert(iid, draft.identifier, actor=ev.actor, confirm=True)
        svc.outbox.run_until_idle(timeout_s=60)   # delivered inline, at this event's virtual time
    elif ev.kind == "cancel_alert":
        svc.cancel_alert(iid, actor=ev.actor, confirm=True)
        svc.outbox.run_until_idle(timeout_s=60)
    elif ev.kind == "close":
        svc.close(iid, actor=ev.actor)
    elif ev.kind == "note":
        svc.note(iid, f.get("text", ""), actor=ev.actor)
    elif ev.kind in ("task", "task_done"):
        _apply_task(ev, svc, iid, {} if tasks is None else tasks)


def _apply_task(ev: ScenarioEvent, svc, iid: str, tasks: dict[tuple[str, str], str]) -> None:
    """A task set for its role or unit, or the task of that key marked done."""
    key = ev.fields.get("task")
    if ev.kind == "task":
        task_id = svc.add_task(iid, ev.fields["role"], ev.fields["text"], actor=ev.actor)
        if key is not None:
            tasks[(ev.incident, key)] = task_id
        return
    task_id = tasks.get((ev.incident, key))
    if task_id is None:
        raise ScenarioError(f"event {ev.index}: task {key!r} of incident {ev.incident!r} was not set "
                            "(its task event failed)")
    svc.complete_task(iid, task_id, actor=ev.actor)


# ---------------------------------------------------------------- report

@functools.lru_cache(maxsize=8192)
def _parsed(at: str) -> datetime:
    return datetime.fromisoformat(at)


def _at_s(start: datetime, at: str | None) -> int | None:
    # a report repeats the same few timestamps (every member of a group joins at its grading): parsed once each
    return None if at is None else int((_parsed(at) - start).total_seconds())


def _rule_text(rule: dict[str, str]) -> str:
    return f"{rule.get('law', '')} {rule.get('article', '')}: {rule.get('criterion', '')}".strip()


def _incident_report(scenario: Scenario, state) -> dict[str, Any]:
    start = scenario.start
    loc = state.location
    nearby = {layer: [_nearby_item(d) for d in sorted(items, key=lambda d: (d["distance_m"], str(d["id"])))]
              for layer, items in state.nearby.items()}
    alerts = []
    for a in state.alerts:
        if not a.was_sent:
            continue
        alerts.append({"at_s": _at_s(start, a.approved_at), "msg_type": a.msg_type, "identifier": a.identifier,
                       "status": a.status, "area": {k: a.area[k] for k in ("circle", "polygon", "more_polygons")
                                                    if a.area.get(k)},
                       "population": a.population, "admin_units": [u["adcode"] for u in a.admin_units],
                       "references": list(a.references), "cap_xml": a.cap_xml})
    return {
        "location": {"lon": round(loc.point.lon, 7), "lat": round(loc.point.lat, 7), "crs": "wgs84",
                     "matched": loc.matched, "precision": loc.precision,
                     "district_adcode": loc.district_adcode, "city_adcode": loc.city_adcode,
                     "district_name": loc.district_name, "city_name": loc.city_name,
                     "confidence": round(loc.confidence, 3),
                     "uncertainty_m": None if loc.uncertainty_m is None else round(float(loc.uncertainty_m), 1),
                     "address": state.address, "township": loc.township},
        "level": state.grade.level,
        "levels": [{"at_s": _at_s(start, lv.at), "level": lv.level, "rule": _rule_text(lv.rule)}
                   for lv in state.levels],
        "nearby": nearby,
        "group": {"created_at_s": _at_s(start, state.group.created_at),
                  "members": [{"role": m.role, "org": m.org, "level_of_government": m.level_of_government,
                               "joined_at_s": _at_s(start, m.joined_at)} for m in state.group.members],
                  "conference": ({"link": state.group.conference.link, "dial": state.group.conference.dial}
                                 if state.group.conference else None)},
        "alerts": alerts,
        "tasks": [{"id": t.id, "role": t.role, "text": t.text, "set_at_s": _at_s(start, t.set_at),
                   "done_at_s": _at_s(start, t.done_at)} for t in state.tasks],
        "closed_at_s": _at_s(start, state.closed_at),
    }


def _nearby_item(d: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "name", "lon", "lat", "distance_m", "drive_time_s", "drive_time_method", "drive_rank")
    return {k: d[k] for k in keep if k in d}


def _report(scenario: Scenario, svc, ids: dict[str, str], errors: list[dict]) -> dict[str, Any]:
    incidents = {key: _incident_report(scenario, svc.get(iid)) for key, iid in ids.items()}
    rows = svc.outbox.deliveries()
    deliveries = {"live": sum(r["mode"] == "live" for r in rows),
                  "exercise": sum(r["mode"] == "exercise" for r in rows)}
    by_channel: dict[str, dict[str, int]] = {}
    for r in rows:
        ch = by_channel.setdefault(r["channel"], {"mode": r["mode"]})
        ch[r["status"]] = ch.get(r["status"], 0) + 1
    checks = []
    for ex in scenario.expect:
        got = incidents.get(ex["incident"])
        for field in ("level", "district_adcode"):
            if field not in ex:
                continue
            actual = None if got is None else (got["level"] if field == "level"
                                                else got["location"]["district_adcode"])
            checks.append({"incident": ex["incident"], "field": field, "expected": ex[field],
                           "actual": actual, "passed": actual == ex[field]})
    return {"format": 1, "scenario": scenario.name, "status": "Exercise",
            "start": scenario.start.isoformat(), "incidents": incidents, "deliveries": deliveries,
            "deliveries_by_channel": dict(sorted(by_channel.items())), "checks": checks, "errors": errors}


def report_exit_code(report: dict[str, Any]) -> int:
    """0 when the replay ran and every expect passed; 1 when an expect failed or a step was refused."""
    ok = all(c["passed"] for c in report.get("checks", [])) and not report.get("errors")
    return 0 if ok else 1
