"""The incident list over a year of history: filters, scope and text search answered by the store's projection
(``store.incident_summaries``, kept in each append's transaction), one page at a time; only the incidents of the
page are folded, and an incident whose timeline has not moved since its last fold is not read again.

    rows, nxt = page(svc, level="III", q="天河", limit=100, viewer=who)     # projection rows + next cursor
    states = states_of(svc, rows)                                           # their IncidentStates, page order
    items = listed(svc, state="open", newest_first=True, limit=200)         # list rows, nothing folded

``listed`` answers what a list row shows (id, type, level badge, place, times, state) from the projection alone:
``Listed`` has the attributes of an ``IncidentState`` that lists and markers read (``grade`` is the grade as a
dict, ``location`` has ``matched``, the district and city, ``point`` and ``uncertainty_m``).

A text ``q`` is looked for in the incident's id, type key, address, matched place, district and city names;
an incident type named by ``q`` (key, alias or Chinese name, or part of one: "火灾", "gas") matches too.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from command.errors import SessionError
from command.security import scopes
from command.security.auth import as_principal
from incidents.model import Point

MAX_Q = 100                  # characters of a text search


def filters(svc: Any, *, level: str | None = None, state: str | None = None, district: str | None = None,
            viewer: Any = None, q: str | None = None) -> dict[str, Any]:
    """The store's filter arguments for what a caller asked (the viewer's scope included)."""
    out: dict[str, Any] = {"level": level or None, "state": state or None, "district": district or None}
    if viewer is not None:
        out["scope"] = scopes.scope_of(as_principal(viewer))
    text = (q or "").strip()
    if text:
        if len(text) > MAX_Q:
            raise SessionError(f"search text of {len(text)} characters refused: at most {MAX_Q}")
        out["q"] = text
        out["types"] = types_named(svc, text)
    return out


def types_named(svc: Any, text: str) -> tuple[str, ...]:
    """Incident type keys one of whose spellings (key, alias, Chinese name) contains ``text``."""
    from incidents.grading import catalogue
    needle = text.lower()
    names = catalogue(svc.settings.data_dir).names
    return tuple(sorted({key for spelling, key in names.items() if needle in spelling}))


def check_page(limit: int | None, offset: int) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise SessionError(f"limit {limit!r} refused: a whole number of at least 1")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise SessionError(f"offset {offset!r} refused: a whole number of at least 0")


def page(svc: Any, *, limit: int, cursor: int | None = None, **asked: Any) -> tuple[list[dict[str, Any]], int | None]:
    """One page of projection rows, newest report first, after ``cursor`` (the ``first_seq`` the previous page
    ended on); and the cursor of the next page (None: this was the last)."""
    check_page(limit, 0)
    rows = svc.store.incident_summaries(**filters(svc, **asked), before=cursor, newest_first=True, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (int(rows[-1]["first_seq"]) if more and rows else None)


def states_of(svc: Any, rows: list[dict[str, Any]]) -> list:
    """The folded state of each row's incident, in the rows' order. A fold the service holds whose last seq is
    the row's is current (the row is written with the events), so it is used as is; the others are read."""
    out = []
    for row in rows:
        with svc._timelines_lock:
            held = svc._timelines.get(row["id"])
        if held is not None and held[0] == row["last_seq"]:
            out.append(held[1].state)
        else:
            out.append(svc.get(row["id"]))
    return out


@dataclass(frozen=True)
class ListedPlace:
    matched: str
    district_adcode: str | None
    district_name: str | None
    city_adcode: str | None
    city_name: str | None
    point: Point | None
    uncertainty_m: float | None


@dataclass(frozen=True)
class Listed:
    """One list row from the projection: what a list or a map marker reads of an incident's state."""

    id: str
    type: str
    state: str
    grade: dict[str, Any]
    location: ListedPlace
    address: str | None
    reported_at: str
    updated_at: str
    closed_at: str | None
    first_seq: int

    @classmethod
    def of(cls, row: dict[str, Any]) -> Listed:
        point = Point(row["lon"], row["lat"], "wgs84") if row["lon"] is not None and row["lat"] is not None else None
        place = ListedPlace(row["matched"], row["district_adcode"], row["district_name"], row["city_adcode"],
                            row["city_name"], point, row["uncertainty_m"])
        return cls(row["id"], row["type"], row["state"], json.loads(row["grade"]), place, row["address"],
                   row["reported_at"], row["updated_at"], row["closed_at"], int(row["first_seq"]))


def listed(svc: Any, *, limit: int | None = None, offset: int = 0, newest_first: bool = False,
           **asked: Any) -> list[Listed]:
    """The rows ``svc.list_incidents`` would return for the same arguments, as ``Listed``: nothing folded."""
    check_page(limit, offset)
    rows = svc.store.incident_summaries(**filters(svc, **asked), newest_first=newest_first, limit=limit,
                                        offset=offset)
    return [Listed.of(r) for r in rows]
