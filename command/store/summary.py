"""The incident list's projection (schema 8): one ``incident_summary`` row per incident, written in the very
transaction that appends its events, so a list, a search or a count reads one indexed table instead of folding
every timeline.

    row = start_row(incident_id, seq, payload, at)       # a Reported that opens a timeline (None: not foldable)
    step(row, kind, payload, at, seq)                    # each later event of that incident, in seq order
    rows = build(events)                                 # the whole table from (seq, incident_id, kind, at,
                                                         #   payload) in seq order: the upgrade, the bench

What a row holds is what ``command.response.timeline.fold`` makes of the same events, field by field: ``type``
(Reported.type, then each Updated's ``changes['type']``), ``grade`` and its ``level`` (the Reported grade, then
each Regraded grade; as JSON text), ``state`` (closed once a Closed event came, ``closed_at`` the last one's
time), the place and the address (the Reported event's only), ``reported_at`` (the report's time).
``updated_at``/``last_seq`` are the newest event's, ``first_seq`` the report's (the list's order). ``tests/store/test_projection.py`` checks the
rows against the fold after reports, updates, regrades and closes on both backends.

The scope columns carry ``command.security.scopes.place_in`` into SQL: ``scope_district`` is the incident's
district adcode when it has a valid one (a district desk sees exactly those), ``scope_city`` the first four
digits of the adcode the rule looks at (the district's, or the city's when no district was found): a city desk
sees the rows of its four digits. A row with neither is the province's only.

Beside it: ``incident_search`` (first_seq, the lower-cased text a search looks in: id, type, address, place and
names) and ``incident_tally`` (how many rows there are), written in the same transaction.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

COLUMNS = ("first_seq", "id", "type", "level", "grade", "state", "district_adcode", "district_name", "city_adcode",
           "city_name", "matched", "address", "lon", "lat", "uncertainty_m", "reported_at", "updated_at",
           "closed_at", "last_seq", "events", "scope_city", "scope_district")
# fields the fold cannot do without: a Reported lacking one is no incident the product can show
_REPORTED_NEEDS = ("type", "location", "casualties", "economic_loss_cny", "description", "grade")
_LOCATION_NEEDS = ("lon", "lat", "precision", "matched", "confidence")
_ADCODE = re.compile(r"^44\d{4}$")
_PROVINCE = "440000"

SQLITE_TABLE = """
CREATE TABLE IF NOT EXISTS incident_summary (
    first_seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    level TEXT NOT NULL,
    grade TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    district_adcode TEXT,
    district_name TEXT,
    city_adcode TEXT,
    city_name TEXT,
    matched TEXT NOT NULL,
    address TEXT,
    lon REAL,
    lat REAL,
    uncertainty_m REAL,
    reported_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    closed_at TEXT,
    last_seq INTEGER NOT NULL,
    events INTEGER NOT NULL,
    scope_city TEXT,
    scope_district TEXT
)"""
# the search text apart, in a narrow table: a search that must look at every incident reads ~60 bytes a row
SQLITE_SEARCH = "CREATE TABLE IF NOT EXISTS incident_search (first_seq INTEGER PRIMARY KEY, search TEXT NOT NULL)"
# how many rows incident_summary holds, kept with them: /health never counts a year of rows
SQLITE_TALLY = "CREATE TABLE IF NOT EXISTS incident_tally (one INTEGER PRIMARY KEY CHECK (one = 1), n INTEGER NOT NULL)"
PG_TABLE = (SQLITE_TABLE.replace("first_seq INTEGER PRIMARY KEY", "first_seq BIGINT PRIMARY KEY")
            .replace("REAL", "DOUBLE PRECISION").replace("last_seq INTEGER", "last_seq BIGINT"))
PG_SEARCH = SQLITE_SEARCH.replace("INTEGER", "BIGINT")
PG_TALLY = SQLITE_TALLY.replace("INTEGER", "BIGINT")
# every filter walks its index in the list's order (first_seq); SQLite's indexes end in the rowid already
INDEXES = (
    "CREATE INDEX IF NOT EXISTS incident_summary_level ON incident_summary (level, first_seq)",
    "CREATE INDEX IF NOT EXISTS incident_summary_state ON incident_summary (state, first_seq)",
    "CREATE INDEX IF NOT EXISTS incident_summary_district ON incident_summary (district_adcode, first_seq)",
    "CREATE INDEX IF NOT EXISTS incident_summary_district_name ON incident_summary (district_name, first_seq)",
    "CREATE INDEX IF NOT EXISTS incident_summary_city ON incident_summary (scope_city, first_seq)",
    "CREATE INDEX IF NOT EXISTS incident_summary_scope_district ON incident_summary (scope_district, first_seq)",
)


def foldable_report(payload: Any) -> bool:
    """Whether a Reported payload holds what the fold needs to make an IncidentState of it."""
    if not isinstance(payload, dict) or any(k not in payload for k in _REPORTED_NEEDS):
        return False
    loc, grade = payload["location"], payload["grade"]
    return (isinstance(loc, dict) and all(k in loc for k in _LOCATION_NEEDS)
            and isinstance(grade, dict) and isinstance(grade.get("level"), str))


def start_row(incident_id: str, seq: int, payload: dict[str, Any], at: str) -> dict[str, Any] | None:
    """The row of a timeline opened by this Reported event; None when the payload cannot be folded."""
    if not foldable_report(payload):
        return None
    loc = payload["location"]
    row = {"first_seq": int(seq), "id": incident_id, "type": payload["type"], "level": payload["grade"]["level"],
           "grade": _json(payload["grade"]), "state": "open", "district_adcode": loc.get("district_adcode"),
           "district_name": loc.get("district_name"),
           "city_adcode": loc.get("city_adcode"), "city_name": loc.get("city_name"), "matched": loc["matched"],
           "address": payload.get("address"), "lon": _float(loc.get("lon")), "lat": _float(loc.get("lat")),
           "uncertainty_m": _float(loc.get("uncertainty_m")), "reported_at": at, "updated_at": at,
           "closed_at": None, "last_seq": int(seq), "events": 1}
    row["scope_district"], row["scope_city"] = scope_columns(row["district_adcode"], row["city_adcode"])
    row["search"] = search_text(row)
    return row


def step(row: dict[str, Any], kind: str, payload: dict[str, Any], at: str, seq: int) -> dict[str, Any]:
    """``row`` after one more event of its incident (in place; returned): the fold's rules for its fields."""
    if kind == "Updated":
        changes = payload.get("changes") if isinstance(payload, dict) else None
        if isinstance(changes, dict) and isinstance(changes.get("type"), str):
            row["type"] = changes["type"]
            row["search"] = search_text(row)
    elif kind == "Regraded":
        grade = payload.get("grade") if isinstance(payload, dict) else None
        if isinstance(grade, dict) and isinstance(grade.get("level"), str):
            row["level"], row["grade"] = grade["level"], _json(grade)
    elif kind == "Closed":
        row["closed_at"], row["state"] = at, "closed"
    row["updated_at"], row["last_seq"], row["events"] = at, int(seq), int(row["events"]) + 1
    return row


def build(events: Iterable[tuple[int, str, str, str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Every row from a stream of (seq, incident_id, kind, at, payload) in seq order: an incident whose first
    event is not a foldable Reported gets no row, as ``fold`` refuses such a timeline."""
    rows: dict[str, dict[str, Any] | None] = {}
    for seq, incident_id, kind, at, payload in events:
        if incident_id not in rows:
            rows[incident_id] = start_row(incident_id, seq, payload, at) if kind == "Reported" else None
        elif rows[incident_id] is not None:
            step(rows[incident_id], kind, payload, at, seq)
    return {k: v for k, v in rows.items() if v is not None}


def scope_columns(district: Any, city: Any) -> tuple[str | None, str | None]:
    """(scope_district, scope_city) as ``scopes.place_in`` reads a place: by its district when it has one,
    else by its city (which only a city desk can claim)."""
    if district:
        code = _code(district)
        return (code, code[:4]) if code else (None, None)
    code = _code(city)
    return None, code[:4] if code else None


def _code(value: Any) -> str | None:
    """A Guangdong adcode below the province, as ``scopes.parse`` would accept it; None otherwise."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip() if value is not None else ""
    if text.endswith(".0"):
        text = text[:-2]
    return text if _ADCODE.match(text) and text != _PROVINCE else None


def search_text(row: dict[str, Any]) -> str:
    """What a text search looks in: id, type, address, matched place, district and city names (lower case)."""
    parts = (row.get("id"), row.get("type"), row.get("address"), row.get("matched"), row.get("district_name"),
             row.get("city_name"))
    return " ".join(str(p) for p in parts if p).lower()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _float(v: Any) -> float | None:
    try:
        return float(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def values(row: dict[str, Any]) -> tuple[Any, ...]:
    """The row in ``COLUMNS`` order, for an INSERT."""
    return tuple(row[c] for c in COLUMNS)


def search_values(row: dict[str, Any]) -> tuple[int, str]:
    """The row's line of ``incident_search``."""
    return int(row["first_seq"]), row["search"]
