"""The incident model. Every point carries its datum; stored and measured points are WGS84.

Small frozen dataclasses: they are values, safe to share between the CLI, drills and the dashboard.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

from incidents.errors import CoordinateError, IncidentError

Datum = Literal["wgs84", "gcj02", "bd09"]
DATUMS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")
Precision = Literal["province", "city", "district", "township", "community", "place", "road", "poi", "point"]
Level = Literal["I", "II", "III", "IV"]
LEVELS: tuple[str, ...] = ("IV", "III", "II", "I")  # ascending gravity


@dataclass(frozen=True, slots=True)
class Point:
    """A longitude/latitude in a named datum. Construction checks the range."""

    lon: float
    lat: float
    crs: Datum = "wgs84"

    def __post_init__(self) -> None:
        if self.crs not in DATUMS:
            raise CoordinateError(f"unknown datum {self.crs!r}: use one of {', '.join(DATUMS)}")
        for name, v, lim in (("lon", self.lon, 180.0), ("lat", self.lat, 90.0)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise CoordinateError(f"{name} {v!r} is not a finite number")
            if not -lim <= v <= lim:
                raise CoordinateError(f"{name} {v} is out of range (-{lim:g}..{lim:g})")

    def as_dict(self) -> dict:
        return {"lon": self.lon, "lat": self.lat, "crs": self.crs}


@dataclass(frozen=True, slots=True)
class Candidate:
    """One place an address may mean."""

    name: str                      # full matched name, e.g. 广东省广州市天河区
    precision: Precision
    lon: float                     # WGS84
    lat: float
    district_adcode: str | None
    city_adcode: str | None
    score: float
    uncertainty_m: float | None = None   # radius around lon/lat the place may lie in (see Location)

    def as_dict(self) -> dict:
        # written out: dataclasses.asdict deep-copies field by field, a third of a batch locate's time
        return {"name": self.name, "precision": self.precision, "lon": self.lon, "lat": self.lat,
                "district_adcode": self.district_adcode, "city_adcode": self.city_adcode, "score": self.score,
                "uncertainty_m": self.uncertainty_m}


@dataclass(frozen=True, slots=True)
class Location:
    """Where an incident is: a WGS84 point, how precise it is, and the admin units it lies in."""

    point: Point                   # always WGS84
    precision: Precision
    matched: str                   # the text the point stands for ("广州市天河区", or "113.3,23.1")
    district_adcode: str | None
    city_adcode: str | None
    confidence: float              # 0..1
    candidates: tuple[Candidate, ...] = ()
    source: str = "offline"        # offline | tianditu | point
    district_name: str | None = None
    city_name: str | None = None
    input_point: Point | None = None   # the point as given, in its own datum, when located from one
    matched_level: str | None = None   # the finest name recognised (may be finer than `precision`,
                                       # e.g. a community matched but only its district has coordinates)
    notes: tuple[str, ...] = ()        # honest remarks: "road not in the road data", "online geocoder down"
    # Radius in metres around `point` within which the place lies, derived from the data (the unit's size
    # and how far the sources disagree: incidents/gazetteer.py). None only where nothing says (an online
    # answer without a level); 0 for a point given as coordinates.
    uncertainty_m: float | None = None
    # Reverse lookup: the nearest township centre inside the district (approximate: no township boundaries
    # exist in the data), as {"code", "name", "distance_m", "approximate": True}.
    township: dict | None = None

    def __post_init__(self) -> None:
        if self.point.crs != "wgs84":
            raise CoordinateError("a Location's point must be WGS84; convert it first")

    def as_dict(self) -> dict:
        """The ``yzt locate --json`` shape of cli.md."""
        d = {
            "lon": round(self.point.lon, 7),
            "lat": round(self.point.lat, 7),
            "crs": "wgs84",
            "precision": self.precision,
            "district_adcode": self.district_adcode,
            "city_adcode": self.city_adcode,
            "district_name": self.district_name,
            "city_name": self.city_name,
            "matched": self.matched,
            "confidence": round(self.confidence, 3),
            "uncertainty_m": None if self.uncertainty_m is None else round(self.uncertainty_m),
            "source": self.source,
            "candidates": [c.as_dict() for c in self.candidates],
        }
        if self.matched_level:
            d["matched_level"] = self.matched_level
        if self.notes:
            d["notes"] = list(self.notes)
        if self.input_point is not None:
            d["input"] = self.input_point.as_dict()
        if self.township is not None:
            d["township"] = dict(self.township)
        return d


@dataclass(frozen=True, slots=True)
class Casualties:
    deaths: int = 0
    serious_injuries: int = 0
    missing: int = 0

    def __post_init__(self) -> None:
        for name in ("deaths", "serious_injuries", "missing"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise IncidentError(f"casualties.{name} must be a whole number >= 0, got {v!r}")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Rule:
    """The rule that fired: law, article and the criterion that reached the level."""

    law: str
    article: str
    criterion: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Grade:
    level: Level
    name: str            # 特别重大 / 重大 / 较大 / 一般
    colour: str          # 红 / 橙 / 黄 / 蓝
    cap_severity: str    # Extreme / Severe / Moderate / Minor
    rule: Rule
    category: str = ""   # the grading table used

    @property
    def rank(self) -> int:
        """0 for IV .. 3 for I: compare gravity with this, never with the roman string."""
        return LEVELS.index(self.level)

    def as_dict(self) -> dict:
        return {"level": self.level, "name": self.name, "colour": self.colour,
                "cap_severity": self.cap_severity, "category": self.category,
                "rule": self.rule.as_dict()}


@dataclass(frozen=True, slots=True)
class IncidentReport:
    """What an officer, a dispatch system or a drill reports. Address, point, or both."""

    type: str
    address: str | None = None
    point: Point | None = None
    casualties: Casualties = field(default_factory=Casualties)
    economic_loss_cny: float = 0
    description: str = ""

