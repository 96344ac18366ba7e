"""Online geocoders, optional and pluggable; the offline gazetteer stays the default.

    from incidents import providers
    providers.configured(settings, client)        # the first provider the settings enable, or None
    providers.register("name", factory)           # factory(settings, client) -> OnlineGeocoder | None
    providers.locate_online(text, offline, error, settings=s, client=c)   # used by geocode.locate

A provider answers ``geocode(text) -> OnlineResult`` or raises GeocoderError (network, key, bad answer).
``locate_online`` keeps the product safe: an answer outside Guangdong is ignored, a failing service falls
back to the offline answer with a note, and an online point outside the district the caller named loses
to the caller's words. Answers are cached on disk (settings.var_dir/geocoder_cache.sqlite), one
transaction per write, so a second identical question makes no request.
"""
from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from incidents.errors import GeocoderError, LocateError
from incidents.model import Candidate, Location, Point


@dataclass(frozen=True, slots=True)
class OnlineResult:
    lon: float
    lat: float
    crs: str              # datum of lon/lat (Tianditu: CGCS2000, treated as wgs84)
    precision: str        # one of the model's Precision values
    score: float | None   # 0..1 when the service gives one
    keyword: str          # what the service says it matched
    provider: str
    level: str = ""       # the service's own level word


class OnlineGeocoder(Protocol):
    name: str

    def geocode(self, text: str) -> OnlineResult: ...


# An offline answer this sure (a district named in full, with its city) beats an online point elsewhere.
TRUST_NAMED_DISTRICT = 0.6
Factory = Callable[[Any, Any], "OnlineGeocoder | None"]
_FACTORIES: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    """Add a provider; factories are asked in registration order."""
    _FACTORIES[name] = factory


def _builtin() -> None:
    if "tianditu" not in _FACTORIES:
        from incidents.providers.tianditu import from_settings
        register("tianditu", from_settings)


def configured(settings, client=None) -> OnlineGeocoder | None:
    _builtin()
    for factory in _FACTORIES.values():
        g = factory(settings, client)
        if g is not None:
            return g
    return None


class Cache:
    """Provider answers by (provider, query) in SQLite; each write is one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=5)
        con.execute("CREATE TABLE IF NOT EXISTS answers (provider TEXT, query TEXT, answer TEXT, at REAL, "
                    "PRIMARY KEY (provider, query))")
        return con

    def get(self, provider: str, query: str) -> dict | None:
        if not self.path.exists():
            return None
        con = self._connect()
        try:
            row = con.execute("SELECT answer FROM answers WHERE provider=? AND query=?",
                              (provider, query)).fetchone()
        finally:
            con.close()
        return json.loads(row[0]) if row else None

    def put(self, provider: str, query: str, answer: dict) -> None:
        con = self._connect()
        try:
            with con:
                con.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?)",
                            (provider, query, json.dumps(answer, ensure_ascii=False), time.time()))
        finally:
            con.close()


def cache_for(settings) -> Cache:
    return Cache(Path(settings.var_dir) / "geocoder_cache.sqlite")


def _with_note(loc: Location | None, error: LocateError | None, note: str) -> Location:
    if loc is None:
        raise LocateError(f"{error}; {note}")
    return replace(loc, notes=loc.notes + (note,))


def _as_location(res: OnlineResult, offline: Location | None) -> Location | str:
    """The online answer as a Location, or the reason it is not used."""
    from incidents import admin
    from incidents.coords import to_wgs84
    w = to_wgs84(Point(res.lon, res.lat, res.crs))
    row = admin.locate_point(w.lon, w.lat)
    if row is None:
        return f"online geocoder {res.provider} answered {w.lon:.5f},{w.lat:.5f}, outside Guangdong: ignored"
    district = str(row["district_adcode"])
    notes = [f"{res.provider} level: {res.level}"] if res.level else []
    if offline is not None and offline.district_adcode and offline.district_adcode != district:
        if offline.confidence >= TRUST_NAMED_DISTRICT:
            return (f"online geocoder {res.provider} placed it in {row['district_name']}, not in the named "
                    f"{offline.district_name}: the named district is kept")
        notes.append(f"offline guess {offline.matched} (confidence {offline.confidence:.2f}) overruled")
    conf = res.score if res.score is not None else 0.7
    cand = Candidate(name=res.keyword, precision=res.precision, lon=w.lon, lat=w.lat,
                     district_adcode=district, city_adcode=str(row["city_adcode"]), score=round(conf, 4))
    return Location(point=w, precision=res.precision, matched=res.keyword, district_adcode=district,
                    city_adcode=str(row["city_adcode"]), confidence=max(0.0, min(1.0, conf)),
                    candidates=(cand,) + (offline.candidates if offline else ()), source=res.provider,
                    district_name=row["district_name"], city_name=row["city_name"],
                    matched_level=res.precision, notes=tuple(notes))


def locate_online(text: str, offline: Location | None, error: LocateError | None, *, settings,
                  client=None) -> Location:
    """Ask the configured online geocoder; fall back to ``offline`` (or its refusal) with a note."""
    provider = configured(settings, client)
    if provider is None:
        if offline is None:
            raise error or LocateError(f"address {text!r}: not found")
        return offline
    try:
        res = provider.geocode(text)
    except GeocoderError as e:
        return _with_note(offline, error, f"online geocoder unavailable ({e}): offline result used")
    loc = _as_location(res, offline)
    if isinstance(loc, str):
        return _with_note(offline, error, loc)
    return loc
