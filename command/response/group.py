"""The response group (应急指挥部): who is in it, from the duty rules, and how it grows on a regrade.

Members are roles in real organisations (never invented people), from ``data/command/duty_rules.yaml``:
the government level that leads each incident level (IV district/county, III city, II and I province) and
the departments each incident type brings, with org-name templates filled from the incident's district,
city and province names ("{district}应急管理局" -> "天河区应急管理局")::

    from command.response import group
    group.roster("gas_explosion", "III", location)     # [Member(role, org, level_of_government, reason)]
    events = group.open_group(incident_id, type, grade, location, at=at, actor=actor, settings=s)
    events = group.regrade(state, new_grade, type, at=at, actor=actor)   # Regraded + MemberJoined...

A regrade upward brings the new lead government's roles in ("升级为较大(III)：广州市 牵头"); a downgrade
is recorded and removes nobody. The conference comes from the plugin hook ``yzt_conference_open``.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from command.errors import SessionError
from command.response.timeline import ConferenceOpened, Event, IncidentState, Member, MemberJoined, Regraded
from incidents.model import LEVELS, Casualties, Grade, Location
from settings import ROOT, load_yaml_model

BUNDLED_DATA = ROOT / "data"

PROVINCE = "广东省"                                      # the product serves Guangdong only
LevelKey = Literal["I", "II", "III", "IV"]
GovLevel = Literal["district", "city", "province"]


class _Rules(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LevelRule(_Rules):
    lead: GovLevel
    join: list[GovLevel] = Field(min_length=1)
    inform: list[str] = []


class Department(_Rules):
    zh: str
    role: str
    lead_role: str | None = None
    only_at_lead: bool = False
    names: dict[Literal["district", "county", "city", "province"], str]


class DutyRules(_Rules):
    format: Literal[1]
    source: dict[str, str] = {}
    government_levels: list[GovLevel]
    levels: dict[LevelKey, LevelRule]
    always: list[str]
    when_casualties: list[str] = []
    types: dict[str, list[str]]
    departments: dict[str, Department]
    overrides: dict[str, dict[str, dict[Literal["district", "county", "city", "province"], str]]] = {}


def rules_path(data_dir: Path = BUNDLED_DATA) -> Path:
    return Path(data_dir) / "command" / "duty_rules.yaml"


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> DutyRules:
    if not path.is_file():
        raise SessionError(f"duty rules {path} are missing: the response group cannot be formed")
    r = load_yaml_model(path, DutyRules, what="duty rules", error=SessionError)
    for where, keys in [("always", r.always), ("when_casualties", r.when_casualties),
                        *((f"types.{t}", ks) for t, ks in r.types.items())]:
        unknown = [k for k in keys if k not in r.departments]
        if unknown:
            raise SessionError(f"duty rules {path}: {where}: unknown department {unknown[0]!r}")
    return r


def rules(data_dir: Path = BUNDLED_DATA) -> DutyRules:
    """The duty rules of ``data_dir`` (the service passes its own; the bundled ones otherwise)."""
    return _load(rules_path(data_dir))


def _short(name: str, suffixes: str) -> str:
    return name[:-1] if name and name[-1] in suffixes and len(name) - 1 >= 2 else name


def _names(location: Location) -> dict[str, str]:
    """The placeholders of the org templates (data/command/README.md)."""
    city = location.city_name or PROVINCE
    district = location.district_name or city
    full = f"{city}{district}" if district.endswith("区") and district != city else district
    return {"province": PROVINCE, "province_short": _short(PROVINCE, "省"), "city": city,
            "city_short": _short(city, "市"), "district": district, "district_short": _short(district, "区县市"),
            "district_full": full}


def lead_level(level: str, *, duty: DutyRules | None = None) -> str:
    """The government level leading an incident of ``level`` (district | city | province)."""
    lv = (duty or rules()).levels.get(level)  # type: ignore[call-overload]
    if lv is None:
        raise SessionError(f"duty rules: no lead government for level {level!r}")
    return lv.lead


def _template(r: DutyRules, key: str, gov: str, names: dict[str, str], collapsed: bool) -> str:
    dept = r.departments[key]
    if collapsed and gov == "district":       # 东莞市, 中山市: the city is its own district unit
        gov = "city"
    over = r.overrides.get(names["city"], {}).get(key, {})
    county = gov == "district" and not names["district"].endswith("区")
    for g in (("county", "district") if county else (gov,)):
        if g in over:
            return over[g]
    for g in (("county", "district") if county else (gov,)):
        if g in dept.names:
            return dept.names[g]
    raise SessionError(f"duty rules: department {key!r} has no name template for the {gov} level")


def _fill(template: str, names: dict[str, str]) -> str:
    try:
        return template.format(**names)
    except (KeyError, IndexError) as e:
        raise SessionError(f"duty rules: org template {template!r} uses an unknown placeholder {e}") from None


def _departments(r: DutyRules, type: str, casualties: Casualties | None) -> list[str]:
    if type not in r.types:
        raise SessionError(f"duty rules: no departments for incident type {type!r}")
    hurt = casualties is not None and (casualties.deaths + casualties.missing + casualties.serious_injuries) > 0
    keys = r.always + r.types[type] + (r.when_casualties if hurt else [])
    return list(dict.fromkeys(keys))


def roster(type: str, level: str, location: Location, *, casualties: Casualties | None = None,
           duty: DutyRules | None = None) -> list[Member]:
    """The group for an incident of ``type`` at ``level`` at ``location``: desks of every government level
    that joins at this level, for the departments of ``always`` + the type (+ ``when_casualties``)."""
    from incidents.grading import level_info
    r = duty or rules()
    lv = r.levels.get(level)  # type: ignore[call-overload]
    if lv is None:
        raise SessionError(f"duty rules: no rule for level {level!r}")
    names = _names(location)
    collapsed = names["district"] == names["city"]
    head = f"{level_info(level)['name']}({level})"
    members: list[Member] = []
    for gov in lv.join:
        place = names["district_full"] if gov == "district" else names[gov]
        reason = f"{head}：{names[gov]} 牵头" if gov == lv.lead else f"{head}：{place} 属地参与"
        for key in _departments(r, type, casualties):
            dept = r.departments[key]
            if dept.only_at_lead and gov != lv.lead:
                continue
            org = _fill(_template(r, key, gov, names, collapsed), names)
            members.append(Member(dept.role, org, gov, reason))
            if gov == lv.lead and dept.lead_role:
                members.append(Member(dept.lead_role, org, gov, reason))
    members += [Member("知会", desk, "national", f"{head}：报告 {desk}") for desk in lv.inform]
    seen: set[tuple[str, str]] = set()
    unique = []
    for m in members:                      # the first (higher, leading) mention of a desk wins
        if (m.role, m.org) not in seen:
            seen.add((m.role, m.org))
            unique.append(m)
    return unique


def open_group(incident_id: str, type: str, grade: Grade, location: Location, *, at: str, actor: str,
               settings: Any, casualties: Casualties | None = None, duty: DutyRules | None = None) -> list[Event]:
    """The events that open the group at once: every member joins, and the conference opens."""
    from command.plugins import open_conference
    events: list[Event] = [MemberJoined(at=at, actor=actor, role=m.role, org=m.org,
                                        level_of_government=m.level_of_government, reason=m.reason)
                           for m in roster(type, grade.level, location, casualties=casualties, duty=duty)]
    place = f"{location.city_name or ''}{location.district_name or ''}"
    title = f"{place} {grade.name}({grade.level}) 应急指挥"
    conf = open_conference(incident_id, title, grade.level, settings)
    events.append(ConferenceOpened(at=at, actor=actor, link=str(conf["link"]),
                                   dial=conf.get("dial"), room=str(conf.get("room", ""))))
    return events


def regrade(state: IncidentState, new: Grade, type: str, *, at: str, actor: str,
            casualties: Casualties | None = None, duty: DutyRules | None = None) -> list[Event]:
    """After an update: Regraded when the grade changed (with the sentence the timeline shows), plus the
    desks that join (a higher level's government, a type's or casualties' departments); nobody leaves."""
    old = state.grade
    names = _names(state.location)
    up = LEVELS.index(new.level) > LEVELS.index(old.level)
    lead = lead_level(new.level, duty=duty)
    if up:
        reason = f"升级为{new.name}({new.level})：{names[lead]} 牵头"
    elif new.level != old.level:
        reason = f"降级为{new.name}({new.level})：已在组的成员保留"
    else:
        reason = f"仍为{new.name}({new.level})：{new.rule.criterion}"
    events: list[Event] = []
    if new.as_dict() != old.as_dict():
        events.append(Regraded(at=at, actor=actor, from_level=old.level, to_level=new.level,
                               grade=new.as_dict(), reason=reason))
    present = {(m.role, m.org) for m in state.group.members}
    for m in roster(type, new.level, state.location, casualties=casualties or state.casualties, duty=duty):
        if (m.role, m.org) in present:
            continue
        why = reason if m.level_of_government == lead and up else m.reason
        events.append(MemberJoined(at=at, actor=actor, role=m.role, org=m.org,
                                   level_of_government=m.level_of_government, reason=why))
    return events
