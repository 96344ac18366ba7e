"""CLI doors into the response service: incidents, alerts and the outbox.

    yzt incident report --address "广州市天河区天河路" --type gas_explosion --serious-injuries 3
    yzt incident update INC --deaths 4 --serious-injuries 15        (regrades, brings the city in)
    yzt alert send INC --instruction "请附近居民向东疏散" [--radius-m 800] --confirm
    yzt alert send INC --exercise ...                               (Exercise, exercise channels only)
    yzt alert cancel INC --confirm         yzt alert status [IDENTIFIER]
    yzt outbox run                         (delivers what is pending, e.g. after a crash)

Every command uses the same ``ResponseService`` the dashboard and drills use, on the SQLite store of
the settings (``var/yzt.db`` by default).
"""
from __future__ import annotations

from typing import Any, Optional

import typer

from command.cli import output as out

incident_app = typer.Typer(no_args_is_help=True, help="Report, update, show, list and close incidents.")
alert_app = typer.Typer(no_args_is_help=True, help="Warn residents with CAP 1.2 through the channels.")
outbox_app = typer.Typer(no_args_is_help=True, help="The durable delivery queue.")
from command.cli.output import JSON_OPT, cli_actor as _actor  # noqa: E402




def _service(*, exercise: bool = False):
    return out.open_app().service(exercise=exercise)


def state_dict(state: Any) -> dict:
    """The JSON view of an incident's state (the fold of its timeline)."""
    d = out.asdict(state)
    return {k: v for k, v in d.items() if k != "events"} | {"events": len(d.get("events") or [])}


def _state_text(d: dict) -> str:
    from command.cli.output import table
    grade = d.get("grade") or {}
    grade = out.asdict(grade) if not isinstance(grade, dict) else grade
    loc = d.get("location") or {}
    loc = out.asdict(loc) if not isinstance(loc, dict) else loc
    lines = [f"incident {d.get('id')}: {d.get('type')} — {grade.get('name')} ({grade.get('level')}) "
             f"[{d.get('state')}]",
             f"where: {loc.get('matched')} [{loc.get('precision')}] {loc.get('district_adcode')}"]
    group = d.get("group") or {}
    group = out.asdict(group) if not isinstance(group, dict) else group
    members = [out.asdict(m) if not isinstance(m, dict) else m for m in group.get("members", [])]
    if members:
        lines += ["group:", table(members, [c for c in ("org", "role") if c in members[0]])]
    conf = group.get("conference")
    if conf:
        conf = out.asdict(conf) if not isinstance(conf, dict) else conf
        lines.append(f"conference: {conf.get('link')} {conf.get('dial') or ''}")
    return "\n".join(lines)


def _casualties(current: Any, deaths, serious, missing):
    from incidents.model import Casualties
    if deaths is None and serious is None and missing is None:
        return None
    cur = current or Casualties()
    return Casualties(deaths if deaths is not None else cur.deaths,
                      serious if serious is not None else cur.serious_injuries,
                      missing if missing is not None else cur.missing)


@incident_app.command("report")
def incident_report(
    type_: Optional[str] = typer.Option(None, "--type", help="incident type (read from --text when not given)"),
    address: Optional[str] = typer.Option(None, "--address", help="what the caller said"),
    point: Optional[str] = typer.Option(None, "--point", help="LON,LAT"),
    crs: str = typer.Option("wgs84", "--crs", help="wgs84 | gcj02 | bd09"),
    deaths: Optional[int] = typer.Option(None, "--deaths", min=0),
    serious_injuries: Optional[int] = typer.Option(None, "--serious-injuries", min=0),
    missing: Optional[int] = typer.Option(None, "--missing", min=0),
    loss: float = typer.Option(0.0, "--loss", min=0),
    description: str = typer.Option("", "--description"),
    text: Optional[str] = typer.Option(None, "--text", help="the call's words: type, counts and place are "
                                       "read from them unless given"),
    as_json: bool = JSON_OPT,
) -> None:
    """Report an incident: it is located, graded, ranked, and its response group opens at once."""
    from incidents.coords import parse_point
    from incidents.model import Casualties, IncidentReport
    if text is not None:
        from command.cli.intake import fill_from_text
        type_, address, deaths, serious_injuries, missing, description = fill_from_text(
            text, type_=type_, address=address, point=point, deaths=deaths, serious=serious_injuries,
            missing=missing, description=description)
    if not type_:
        raise typer.BadParameter("give --type (or --text whose words name the incident type)")
    if not address and not point:
        raise typer.BadParameter("give --address or --point (or both), or --text that names the place")
    rep = IncidentReport(type=type_, address=address, point=parse_point(point, crs.lower()) if point else None,
                         casualties=Casualties(deaths or 0, serious_injuries or 0, missing or 0),
                         economic_loss_cny=loss, description=description)
    state = _service().report(rep, actor=_actor())
    out.emit(state_dict(state), as_json, _state_text)


@incident_app.command("update")
def incident_update(
    incident_id: str,
    type_: Optional[str] = typer.Option(None, "--type"),
    deaths: Optional[int] = typer.Option(None, "--deaths", min=0),
    serious_injuries: Optional[int] = typer.Option(None, "--serious-injuries", min=0),
    missing: Optional[int] = typer.Option(None, "--missing", min=0),
    loss: Optional[float] = typer.Option(None, "--loss", min=0),
    description: Optional[str] = typer.Option(None, "--description"),
    as_json: bool = JSON_OPT,
) -> None:
    """Update casualties, loss, type or description; a higher grade brings the higher government in."""
    svc = _service()
    cur = svc.get(incident_id)
    cas = _casualties(cur.casualties, deaths, serious_injuries, missing)
    state = svc.update(incident_id, actor=_actor(), type=type_, casualties=cas,
                       economic_loss_cny=loss, description=description)
    out.emit(state_dict(state), as_json, _state_text)


@incident_app.command("show")
def incident_show(incident_id: str, as_json: bool = JSON_OPT) -> None:
    """One incident: location, grade, group, tasks, alerts."""
    out.emit(state_dict(_service().get(incident_id)), as_json, _state_text)


@incident_app.command("list")
def incident_list(
    level: Optional[str] = typer.Option(None, "--level"),
    state: Optional[str] = typer.Option(None, "--state", help="open | closed"),
    district: Optional[str] = typer.Option(None, "--district", help="district adcode"),
    search: Optional[str] = typer.Option(None, "--search", help="text in the id, type, address or place"),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000, help="at most this many, newest first"),
    as_json: bool = JSON_OPT,
) -> None:
    """Incidents, newest first, filtered by level, state, district or text; at most --limit of them."""
    states = _service().list_incidents(level=level, state=state, district=district, q=search, limit=limit,
                                       newest_first=True)
    rows = [{"id": s.id, "type": s.type, "level": s.grade.level, "district": s.location.district_name,
             "state": s.state, "reported_at": s.reported_at} for s in states]
    out.emit({"incidents": [state_dict(s) for s in states]}, as_json, lambda _: out.table(rows))


@incident_app.command("note")
def incident_note(incident_id: str, text: str, as_json: bool = JSON_OPT) -> None:
    """Add a note to the timeline."""
    _service().note(incident_id, text, actor=_actor())
    out.emit({"incident": incident_id, "note": text}, as_json, lambda d: "noted")


@incident_app.command("task")
def incident_task(incident_id: str, role: str, text: str, as_json: bool = JSON_OPT) -> None:
    """Set a task for a role of the group."""
    task_id = _service().add_task(incident_id, role, text, actor=_actor())
    out.emit({"incident": incident_id, "task_id": task_id}, as_json, lambda d: f"task {d['task_id']} set")


@incident_app.command("done")
def incident_task_done(incident_id: str, task_id: str, as_json: bool = JSON_OPT) -> None:
    """Mark a task done."""
    _service().complete_task(incident_id, task_id, actor=_actor())
    out.emit({"incident": incident_id, "task_id": task_id, "status": "done"}, as_json, lambda d: "done")


@incident_app.command("close")
def incident_close(incident_id: str, as_json: bool = JSON_OPT) -> None:
    """Close an incident."""
    _service().close(incident_id, actor=_actor())
    out.emit({"incident": incident_id, "state": "closed"}, as_json, lambda d: f"{incident_id} closed")


def _deliver_and_report(svc, result: dict, as_json: bool) -> None:
    svc.outbox.run_until_idle(timeout_s=60)
    result = dict(result)
    result["deliveries"] = svc.outbox.deliveries(result.get("identifier"))
    out.emit(result, as_json, lambda d: f"{d.get('msg_type', 'Alert')} {d.get('identifier')} "
             f"({d.get('status')})\n" + out.table(d["deliveries"], ["channel", "mode", "status",
                                                                   "attempts", "last_error"]))


@alert_app.command("send")
def alert_send(
    incident_id: str,
    instruction: str = typer.Option("", "--instruction", help="what residents should do (zh)"),
    instruction_en: str = typer.Option("", "--instruction-en"),
    radius_m: Optional[float] = typer.Option(None, "--radius-m", help="default: the type/level rule"),
    exercise: bool = typer.Option(False, "--exercise", help="an Exercise: exercise channels only"),
    confirm: bool = typer.Option(False, "--confirm", help="required for an Actual public warning"),
    dry_run: bool = typer.Option(False, "--dry-run", help="show the draft (area, population, CAP), send nothing"),
    as_json: bool = JSON_OPT,
) -> None:
    """Warn the residents around an incident: CAP 1.2 validated, written durably, then delivered."""
    svc = _service(exercise=exercise)
    draft = svc.draft_alert(incident_id, actor=_actor(), radius_m=radius_m,
                            instruction_zh=instruction, instruction_en=instruction_en)
    if dry_run:
        out.emit(out.asdict(draft), as_json, lambda d: out.kv(d))
        return
    result = svc.send_alert(incident_id, draft.identifier, actor=_actor(), confirm=confirm)
    _deliver_and_report(svc, result, as_json)


@alert_app.command("cancel")
def alert_cancel(incident_id: str, exercise: bool = typer.Option(False, "--exercise"),
                 confirm: bool = typer.Option(False, "--confirm"), as_json: bool = JSON_OPT) -> None:
    """Cancel the incident's current warning (CAP Cancel referencing it)."""
    svc = _service(exercise=exercise)
    result = svc.cancel_alert(incident_id, actor=_actor(), confirm=confirm)
    _deliver_and_report(svc, result, as_json)


@alert_app.command("status")
def alert_status(identifier: Optional[str] = typer.Argument(None), as_json: bool = JSON_OPT) -> None:
    """Delivery status per channel (all alerts, or one identifier)."""
    svc = _service()
    rows = svc.outbox.deliveries(identifier)
    out.emit({"deliveries": rows}, as_json,
             lambda d: out.table(d["deliveries"], ["identifier", "channel", "mode", "status", "attempts"]
                                 if rows and "identifier" in rows[0] else None))


@outbox_app.command("run")
def outbox_run(timeout_s: float = typer.Option(60.0, "--timeout-s"), as_json: bool = JSON_OPT) -> None:
    """Deliver everything pending (resumes after a crash; never sends twice to an idempotent receiver)."""
    svc = _service()
    svc.outbox.run_until_idle(timeout_s=timeout_s)
    rows = svc.outbox.deliveries()
    summary: dict[str, int] = {}
    for r in rows:
        summary[r["status"]] = summary.get(r["status"], 0) + 1
    out.emit({"deliveries": summary}, as_json, lambda d: out.kv(d["deliveries"]) or "nothing to deliver")


@outbox_app.command("work")
def outbox_work(exit_with: Optional[int] = typer.Option(None, "--exit-with", help="stop when the process "
                                                        "with this pid ends (yzt serve passes its own)"),
                poll_s: float = typer.Option(1.0, "--poll-s", min=0.05, max=60.0)) -> None:
    """A long-running delivery worker: sends what the store has queued, on every configured channel.
    Several may run at once, on any machine that reaches the database (claims carry a lease)."""
    from command.alerts.work import work_until_stopped
    work_until_stopped(out.open_app(), exit_with=exit_with, poll_s=poll_s)


# ------------------------------------------------------------------------------------------- showcase
DEMO_ADDRESS = "广州市天河区天河路 商场燃气爆炸 3人重伤"


def demo_incident() -> dict:
    """Locate, grade and rank one sample incident on the real data (nothing is stored)."""
    from incidents import geocode, grading
    from incidents.model import Casualties
    from layers.nearby import around
    settings, cat = out.settings(), out.catalog()
    loc = geocode.locate(DEMO_ADDRESS, data_dir=settings.data_dir)
    g = grading.grade("gas_explosion", Casualties(serious_injuries=3),
                      missing_count_as_deaths=settings.missing_count_as_deaths, data_dir=settings.data_dir)
    nearby, synthetic = {}, {}
    for layer in ("hospital", "fire_station", "shelter", "camera"):
        nearby[layer] = around(layer, loc.point, k=5, catalog=cat, uncertainty_m=loc.uncertainty_m or 0.0)
        synthetic[layer] = bool(cat.load(layer).synthetic)
    return {"address": DEMO_ADDRESS, "type": "gas_explosion", "location": loc.as_dict(),
            "grade": g.as_dict(), "nearby": nearby, "synthetic": synthetic}


def incident_from_cap(ingested: Any, *, type_: str | None = None) -> dict:
    """Open a live incident from an ingested official CAP warning (Actual messages only)."""
    from command.errors import CapIngestError
    from incidents.model import IncidentReport, Point
    d = out.asdict(ingested)
    if d.get("status") != "Actual":
        raise CapIngestError(f"{d.get('path')}: CAP status {d.get('status')}: only an Actual warning "
                             "opens a live incident")
    kind = type_ or d.get("incident_type")
    if not kind:
        raise CapIngestError(f"{d.get('path')}: event {d.get('event')!r} maps to no incident type: "
                             "give --type (see `yzt types`)")
    pt = d.get("point")
    point = Point(pt["lon"], pt["lat"], "wgs84") if isinstance(pt, dict) else None
    address = d.get("area_desc") if point is None else None
    rep = IncidentReport(type=kind, address=address, point=point,
                         description=d.get("headline") or d.get("event") or "")
    return state_dict(_service().report(rep, actor=f"cap:{d.get('sender', 'unknown')}"))
