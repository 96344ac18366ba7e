"""How the dispatch API shows an incident and a warning: folded state -> ``command.api.schema`` response models.

    from command.api.views import incident_out, summary_out, alert_out
    incident_out(svc.get(incident_id)).model_dump_json()

Only plain, finite values leave: a NaN or infinite number (a missing drive time, say) becomes null, and
each model refuses unknown keys, so a response always matches the OpenAPI document.
"""
from __future__ import annotations

import math
from typing import Any

from command.api import schema as S
from command.alerts.area import ring_text
from command.response.timeline import AlertRecord, IncidentState, Reported


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _nearby(items: list[dict[str, Any]]) -> list[S.NearbyOut]:
    out = []
    for d in items:
        lon, lat, dist = _num(d.get("lon")), _num(d.get("lat")), _num(d.get("distance_m"))
        if lon is None or lat is None or dist is None:
            continue
        out.append(S.NearbyOut(id=str(d.get("id", "")), name=str(d.get("name", "")), lon=lon, lat=lat,
                               distance_m=dist, drive_time_s=_num(d.get("drive_time_s")),
                               approximate=bool(d.get("approximate")),
                               distance_uncertainty_m=_num(d.get("distance_uncertainty_m")),
                               in_uncertainty_area=d.get("in_uncertainty_area")))
    return out


def incident_out(s: IncidentState) -> S.IncidentOut:
    loc, g = s.location, s.grade
    first = s.events[0]
    conf = s.group.conference
    return S.IncidentOut(
        id=s.id, type=s.type, state=s.state, reported_at=s.reported_at,
        reported_by=first.actor if isinstance(first, Reported) else "", closed_at=s.closed_at, address=s.address,
        location=S.LocationOut(lon=loc.point.lon, lat=loc.point.lat, crs="wgs84", precision=loc.precision,
                               matched=loc.matched, confidence=_num(loc.confidence) or 0.0,
                               district_adcode=loc.district_adcode, city_adcode=loc.city_adcode,
                               district_name=loc.district_name, city_name=loc.city_name,
                               uncertainty_m=loc.uncertainty_m),
        casualties=S.CasualtiesOut(**s.casualties.as_dict()), economic_loss_cny=_num(s.economic_loss_cny) or 0.0,
        description=s.description,
        grade=S.GradeOut(level=g.level, name=g.name, colour=g.colour, cap_severity=g.cap_severity,
                         category=g.category, law=g.rule.law, article=g.rule.article, criterion=g.rule.criterion),
        levels=[S.LevelChangeOut(at=lc.at, level=lc.level, reason=lc.reason) for lc in s.levels],
        members=[S.MemberOut(role=m.role, org=m.org, level_of_government=m.level_of_government)
                 for m in s.group.members],
        conference_link=conf.link if conf else None,
        tasks=[S.TaskOut(id=t.id, role=t.role, text=t.text, set_at=t.set_at, done_at=t.done_at) for t in s.tasks],
        alerts_sent=[a.identifier for a in s.alerts if a.was_sent],
        nearby={layer: _nearby(items) for layer, items in (s.nearby or {}).items()})


def summary_out(s: IncidentState) -> S.IncidentSummaryOut:
    loc = s.location
    return S.IncidentSummaryOut(id=s.id, type=s.type, state=s.state, level=s.grade.level, reported_at=s.reported_at,
                                district_adcode=loc.district_adcode, district_name=loc.district_name,
                                matched=loc.matched)


def _unit(u: dict[str, Any]) -> S.AdminUnitOut:
    pop = _num(u.get("population"))
    return S.AdminUnitOut(adcode=str(u.get("adcode", "")), name=str(u.get("name", "")),
                          population=int(pop) if pop is not None else None)


def _delivery(d: dict[str, Any]) -> S.DeliveryOut:
    return S.DeliveryOut(channel=d["channel"], mode=d["mode"], status=d["status"], attempts=int(d["attempts"]),
                         updated_at=d.get("updated_at"), last_error=d.get("last_error"))


def _rings(area: dict[str, Any]) -> list[str]:
    rings = ([area["polygon"]] if area.get("polygon") else []) + list(area.get("more_polygons") or [])
    return [ring_text(r) for r in rings]


def alert_out(s: IncidentState, a: AlertRecord, deliveries: list[dict[str, Any]]) -> S.AlertOut:
    active = {x.identifier for x in s.active_alerts}
    return S.AlertOut(
        identifier=a.identifier, incident_id=s.id, status=a.status, msg_type=a.msg_type, sent=a.sent,
        approved_at=a.approved_at, in_force=a.identifier in active, references=list(a.references),
        circle=(a.area or {}).get("circle"), polygons=_rings(a.area or {}),
        radius_m=_num((a.area or {}).get("radius_m")),
        population=int(a.population), admin_units=[_unit(u) for u in a.admin_units],
        cancelled_by=a.cancelled_by, cancels=list(a.cancels), cap_xml=a.cap_xml,
        deliveries=[_delivery(d) for d in deliveries])
