"""Jurisdictions: which part of Guangdong a user or a dispatch system acts for, and the rule every door's
action passes through (the service calls these; the CLI, the API, the dashboard and drills all reach it).

    from command.security import scopes
    scopes.parse("440106")                    # '440106' (天河区); "province" / "440000" / None -> '440000'
    scopes.level("440100")                    # 'city'  ('province' | 'city' | 'district')
    scopes.contains("440100", "440106")       # True: a city holds its districts
    scopes.require_incident(who, state)       # who, or PermissionDenied naming the incident and the scope
    scopes.require_area(who, draft.admin_units)   # a warning's districts must all lie inside the scope
    scopes.visible(who, state)                # for the incident list, the map and the API's reads

A scope is an adcode: ``440000`` the province, a city (``4401 00``, ending in 00) or a district/county
(``440106``). 东莞 (441900) and 中山 (442000) have no districts: the city is its own district unit, so the
scope of their desk holds every place the geocoder puts in them.

The rule is geography, the same one the duty rules (``data/command/duty_rules.yaml``) use to form the response
group: a level IV incident is the district's, III brings the city in, II and I the province. A desk sees and
acts on incidents located inside its scope, so an incident regraded upward is already in the scope of every
higher desk that joins it (``joins`` says which levels of government join an incident of a level, from the
duty rules; ``desks`` names the scopes of those desks for one incident). A district desk never reaches
across its border: an incident or a warned district outside it is refused with the desk that may act.

An incident the geocoder could not place in a city (no adcode at all) is the province's only.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from command.errors import PermissionDenied

PROVINCE = "440000"
_ADCODE = re.compile(r"^44\d{4}$")
_NAMES = {"province": PROVINCE, "广东省": PROVINCE, "广东": PROVINCE, "gd": PROVINCE}


class ScopeError(PermissionDenied):
    """A scope that is not Guangdong's province, a city or a district adcode."""


def parse(value: Any) -> str:
    """The canonical scope of ``value``: None/''/'province' -> '440000'; a 6-digit Guangdong adcode as is.
    (A float or int adcode such as 440106.0 from a CSV is accepted.)"""
    if value is None or (isinstance(value, str) and not value.strip()):
        return PROVINCE
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    text = _NAMES.get(text.lower(), text)
    if text.endswith(".0"):
        text = text[:-2]
    if not _ADCODE.match(text):
        raise ScopeError(f"scope {value!r} refused: 'province' (440000), a city adcode (440100) or a district "
                         "adcode (440106) of Guangdong")
    return text


def level(scope: str) -> str:
    """'province', 'city' or 'district' for a canonical scope."""
    scope = parse(scope)
    if scope == PROVINCE:
        return "province"
    return "city" if scope.endswith("00") else "district"


def city_of(adcode: str) -> str:
    """The city adcode of any Guangdong adcode (the province gives the province)."""
    code = parse(adcode)
    return code if code == PROVINCE else code[:4] + "00"


def contains(scope: str, adcode: Any) -> bool:
    """True when ``adcode`` (a city or a district) lies inside ``scope``. Unknown or foreign codes: False,
    except for the province scope, which holds everything the product serves (Guangdong only)."""
    scope = parse(scope)
    if scope == PROVINCE:
        return True
    try:
        code = parse(adcode)
    except ScopeError:
        return False
    if code == PROVINCE:
        return False
    if level(scope) == "city":
        return code[:4] == scope[:4]
    return code == scope


def place_codes(location: Any) -> tuple[str | None, str | None]:
    """(district adcode, city adcode) of a Location, an IncidentState or a mapping with those keys."""
    loc = getattr(location, "location", location)
    if isinstance(loc, dict):
        return loc.get("district_adcode"), loc.get("city_adcode")
    return getattr(loc, "district_adcode", None), getattr(loc, "city_adcode", None)


def place_in(scope: str, location: Any) -> bool:
    """Whether a place (Location or incident) lies inside ``scope``: by its district, else by its city."""
    scope = parse(scope)
    if scope == PROVINCE:
        return True
    district, city = place_codes(location)
    if district:
        return contains(scope, district)
    if city and level(scope) == "city":
        return contains(scope, city)
    return False            # placed only in a city (or nowhere): a district desk cannot claim it


def scope_of(principal: Any) -> str:
    """A principal's scope (principals made before scopes existed act for the province)."""
    return parse(getattr(principal, "scope", None))


def visible(principal: Any, incident: Any) -> bool:
    """Whether ``principal`` may see ``incident`` (an IncidentState): it lies inside the principal's scope."""
    return place_in(scope_of(principal), incident)


def _where(location: Any) -> str:
    loc = getattr(location, "location", location)
    district, city = place_codes(loc)
    name = (getattr(loc, "city_name", None) or "") + (getattr(loc, "district_name", None) or "") \
        if not isinstance(loc, dict) else ""
    code = district or city or "no adcode"
    return f"{name} ({code})" if name else code


def _desk(location: Any) -> str:
    district, city = place_codes(location)
    return district or city or PROVINCE


def require_place(principal: Any, location: Any, action: str) -> Any:
    """``principal`` when ``location`` lies inside its scope, else PermissionDenied in one line."""
    scope = scope_of(principal)
    if not place_in(scope, location):
        who = getattr(principal, "name", "?")
        ident = getattr(location, "id", None)
        what = f"incident {ident} in " if ident else ""
        raise PermissionDenied(f"{who} (scope {scope}) may not {action} {what}{_where(location)}: outside the "
                               f"jurisdiction; that is for the desk of {_desk(location)} or above")
    return principal


def require_incident(principal: Any, incident: Any, action: str = "act on") -> Any:
    """``principal`` when the incident (an IncidentState) lies in its scope; else PermissionDenied."""
    return require_place(principal, incident, action)


def unit_codes(admin_units: Iterable[Any]) -> list[str]:
    """The adcodes of a warned area's units ({adcode, name, ...} mappings, or adcodes)."""
    out = []
    for u in admin_units or ():
        code = u.get("adcode") if isinstance(u, dict) else u
        if code is not None:
            out.append(str(code))
    return out


def require_area(principal: Any, admin_units: Iterable[Any], action: str = "warn") -> Any:
    """``principal`` when every district of a warning's area lies inside its scope; else PermissionDenied
    naming the first unit outside and the desk that may warn it (the smallest scope holding them all)."""
    scope = scope_of(principal)
    codes = unit_codes(admin_units)
    outside = [c for c in codes if not contains(scope, c)]
    if outside:
        who = getattr(principal, "name", "?")
        raise PermissionDenied(f"{who} (scope {scope}) may not {action} {', '.join(outside[:3])}: the warned area "
                               f"reaches outside the jurisdiction; the desk of {common_scope(codes)} may")
    return principal


def common_scope(codes: Iterable[str]) -> str:
    """The smallest scope holding every one of ``codes``: one district, their city, or the province."""
    codes = {parse(c) for c in codes}
    if len(codes) == 1:
        return next(iter(codes))
    cities = {city_of(c) for c in codes}
    return next(iter(cities)) if len(cities) == 1 else PROVINCE


def joins(incident_level: str, duty: Any) -> tuple[str, ...]:
    """The levels of government whose desks join an incident of ``incident_level`` (duty rules)."""
    rule = duty.levels.get(incident_level) if duty is not None else None
    return tuple(rule.join) if rule is not None else ("district", "city", "province")


def desks(incident: Any, duty: Any) -> tuple[str, ...]:
    """The scopes whose desks join ``incident`` at its current grade (narrowest first), per the duty rules:
    a level IV fire in 天河 -> ('440106',); regraded to III -> ('440106', '440100'); II -> + '440000'."""
    district, city = place_codes(incident)
    level_now = getattr(getattr(incident, "grade", None), "level", None)
    out = []
    for gov in ("district", "city", "province"):
        if gov not in joins(level_now, duty):
            continue
        code = {"district": district, "city": city or (city_of(district) if district else None),
                "province": PROVINCE}[gov]
        if code and code not in out:
            out.append(parse(code))
    return tuple(out)
