"""The warned area of a public warning: default radius rules, the officer's radius or polygon, land clipping.

    from command.alerts.area import warning_radius_m, build_area
    warning_radius_m("gas_explosion", "III")        # (800.0, "gas_explosion level III: 800 m circle (ERG ...)")
    area = build_area(point, type="gas_explosion", level="III")            # the rule's circle
    area = build_area(point, radius_m=1200, type="fire", level="IV")       # the officer's radius wins
    area = build_area(point, polygon=[(23.13, 113.31), ..., (23.13, 113.31)], type="flood", level="II")
    area.circle        # (lat, lon, radius_km) as CAP writes it, the requested radius
    area.polygon       # [(lat, lon), ...] closed ring: the officer's, the clipped area, or the district
    area.population, area.admin_units   # people and districts inside the land part of the area

Rules are data (``data/alerting/warning_rules.yaml``, reasons in ``data/alerting/README.md``). The area is
kept to the hazard: too-wide targeting is the most reported failure of public alerting (US WEA lessons),
so a circle is never widened to whole districts; only area-wide hazards (flood, typhoon) default to them.
Every distance is measured in EPSG:4547. Refusals raise ``AlertError`` with one clear line.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import shapely
from shapely import unary_union
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from shapely.geometry import MultiPolygon, Polygon

from command.errors import AlertError
from incidents import admin
from incidents.model import LEVELS, Point
from layers.index import metric_to_wgs84 as to_wgs84
from layers.index import wgs84_to_metric as to_metric
from layers.population import circle_wgs84, population_within
from settings import get_settings

RULES_FILE = "alerting/warning_rules.yaml"
MAX_CAP_VERTICES = 100
MAX_CAP_POLYGONS = 40      # land pieces of one clipped area (coast, islands): more are merged by buffering
MAX_CAP_TOTAL_VERTICES = 1000   # all its rings together: ~18 KB of coordinates per language block
MIN_UNIT_M2 = 1000.0      # an admin unit with less of its land inside the area is not warned (border slivers)
CLIP_KEEP_SHARE = 0.9      # below this share of the requested area left on land, CAP also gets the polygon
ResponseType = Literal["Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess",
                       "AllClear", "None"]


class TypeRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    area: Literal["circle", "districts"]
    radius_m: dict[Literal["I", "II", "III", "IV"], float] | None = None
    response: list[ResponseType]
    note_zh: str = ""
    note_en: str = ""
    basis: str


class IngestRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: str
    keywords: list[str]
    categories: list[str] = []


class WarningRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Literal[1]
    max_radius_m: float
    types: dict[str, TypeRule]
    default: TypeRule
    ingest: list[IngestRule] = []


@dataclass(frozen=True)
class AlertArea:
    """Where a warning applies. ``geometry_wgs84`` is the land part in Guangdong; CAP gets circle/polygon."""

    circle: tuple[float, float, float] | None          # (lat, lon, radius_km), the requested radius
    polygon: list[tuple[float, float]] | None          # closed ring of (lat, lon), <= ~100 vertices
    geometry_wgs84: Any                                # shapely geometry, clipped to Guangdong's land
    admin_units: list[dict] = field(default_factory=list)   # [{adcode, name, population}]
    population: int = 0
    radius_m: float | None = None
    reason: str = ""
    population_method: str = ""
    land_share: float = 1.0                            # land part / requested area (1.0 = nothing clipped)
    whole_units: bool = False                          # the area IS its admin units (a district-wide warning)
    more_polygons: tuple = ()                          # the other land pieces of a clipped area (CAP gets all)

    @property
    def area_desc(self) -> str:
        return "、".join(u["name"] for u in self.admin_units) or "广东省"

    def as_dict(self) -> dict:
        d: dict[str, Any] = {}
        if self.circle:
            lat, lon, r = self.circle
            d["circle"] = f"{lat:.5f},{lon:.5f} {r:g}"
        if self.polygon:
            d["polygon"] = ring_text(self.polygon)
        if self.more_polygons:
            d["more_polygons"] = [ring_text(r) for r in self.more_polygons]
        return {"area": d, "population": self.population, "radius_m": self.radius_m,
                "admin_units": [u["adcode"] for u in self.admin_units], "reason": self.reason,
                "land_share": round(self.land_share, 3)}


# ---------------------------------------------------------------- rules


@functools.lru_cache(maxsize=4)
def _load_rules(path: Path) -> WarningRules:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AlertError(f"warning rules {path}: file not found") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise AlertError(f"warning rules {path}{f' line {mark.line + 1}' if mark else ''}: not valid YAML") from None
    try:
        rules = WarningRules.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        raise AlertError(f"warning rules {path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    for key, rule in [*rules.types.items(), ("default", rules.default)]:
        if rule.area == "circle" and (not rule.radius_m or set(rule.radius_m) != set(LEVELS)):
            raise AlertError(f"warning rules {path}: {key}: a circle rule needs radius_m for I, II, III and IV")
    return rules


def rules() -> WarningRules:
    """The warning rules of the configured data directory (cached)."""
    return _load_rules(get_settings().data_dir / RULES_FILE)


def rule_for(type: str) -> tuple[TypeRule, bool]:
    """(rule, is_default): the type's own rule, or the default rule for a type with none."""
    r = rules()
    if type in r.types:
        return r.types[type], False
    return r.default, True


def response_types(type: str) -> list[str]:
    """CAP responseType values for a warning about this type (a Cancel sends AllClear instead)."""
    return list(rule_for(type)[0].response)


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise AlertError(f"level {level!r} is not one of I, II, III, IV")


def warning_radius_m(type: str, level: str) -> tuple[float | None, str]:
    """The default radius (metres) for a type and level and why; None for area-wide (district) types."""
    _check_level(level)
    rule, is_default = rule_for(type)
    note = f"; {rule.note_zh}" if rule.note_zh else ""
    if rule.area == "districts":
        return None, f"{type} level {level}: whole district(s) at the incident ({rule.basis}){note}"
    radius = float(rule.radius_m[level])
    which = f"no rule for {type!r}, default" if is_default else type
    return radius, f"{which} level {level}: {radius:g} m circle ({rule.basis}){note}"


# ---------------------------------------------------------------- geometry helpers


@functools.lru_cache(maxsize=2)
def _district_km2(root: Path) -> dict[str, float]:
    d = admin.districts(root)
    return dict(zip(d["district_adcode"], d["area_km2"]))


def _population(area_wgs84) -> tuple[int, list[dict], str]:
    """(total, [{adcode, name, population}], method) inside the area."""
    est = population_within(area_wgs84)
    km2 = _district_km2(admin.data_dir())
    # Shared borders touch the neighbours along a line: a unit is warned only with real land inside.
    units = [{"adcode": str(u["adcode"]), "name": u["name"], "population": int(u["population"])}
             for u in est.units if u["share"] * km2.get(str(u["adcode"]), 0.0) * 1e6 >= MIN_UNIT_M2]
    return int(est.total), units, est.method


def ring_text(ring: Sequence[tuple[float, float]]) -> str:
    """A (lat, lon) ring as CAP writes a <polygon>: "lat,lon lat,lon ..." to 5 decimals (~1 m)."""
    return " ".join(f"{la:.5f},{lo:.5f}" for la, lo in ring)


def cap_ring(geom_wgs84, max_vertices: int = MAX_CAP_VERTICES) -> list[tuple[float, float]]:
    """The largest part's outline as a closed (lat, lon) ring of <= max_vertices, covering the part."""
    m = to_metric(geom_wgs84)
    parts = list(m.geoms) if isinstance(m, MultiPolygon) else [m]
    return list(cap_rings(to_wgs84(Polygon(max(parts, key=lambda p: p.area).exterior)), max_vertices, max_rings=1)[0])


def cap_rings(geom_wgs84, max_vertices: int = MAX_CAP_VERTICES,
              max_rings: int = MAX_CAP_POLYGONS) -> list[tuple[tuple[float, float], ...]]:
    """Closed (lat, lon) rings, largest first, that together cover every part of the geometry: at most
    ``max_rings`` of at most ``max_vertices`` each. The land is buffered by a margin and simplified by a
    tolerance (parts closer than twice the margin, islands, merge into one ring); the rings as CAP will read
    them (rounded to 5 decimals, straight edges in lat/lon) are checked to cover the land, and the margin
    grows until they do. Overshoot: the margin, from 1 m up; never a ring that leaves land out."""
    m = to_metric(geom_wgs84)
    land = geom_wgs84.buffer(-1e-7)          # ~1 cm inside: float noise is not "land left out"
    for tol in (0, 5, 10, 25, 50, 100, 160, 250, 500, 1000, 2000, 5000, 10000):
        for margin in (tol + 1.0, 2 * tol + 5.0, 3 * tol + 25.0):
            shape = m.buffer(margin, quad_segs=2).simplify(tol)
            parts = [Polygon(p.exterior) for p in getattr(shape, "geoms", [shape]) if not p.is_empty]
            sizes = [len(p.exterior.coords) for p in parts]
            if len(parts) > max_rings or max(sizes) > max_vertices or sum(sizes) > MAX_CAP_TOTAL_VERTICES:
                break                       # a wider margin only merges more: go to a coarser tolerance
            rings = [_latlon_ring(p) for p in sorted(parts, key=lambda p: p.area, reverse=True)]
            if unary_union([Polygon([(lo, la) for la, lo in r]) for r in rings]).covers(land):
                return rings
    box = geom_wgs84.minimum_rotated_rectangle.buffer(1e-4, join_style="mitre")   # a last resort: covers all
    return [tuple((round(la, 5), round(lo, 5)) for lo, la in box.exterior.coords)]


def _latlon_ring(part_metric: Polygon) -> tuple[tuple[float, float], ...]:
    out: list[tuple[float, float]] = []
    for lon, lat in np.asarray(to_wgs84(part_metric).exterior.coords):
        p = (round(float(lat), 5), round(float(lon), 5))
        if not out or out[-1] != p:
            out.append(p)
    if out[0] != out[-1]:
        out.append(out[0])
    return tuple(out)


def parse_polygon(polygon: Any) -> Polygon:
    """An officer's polygon -> shapely Polygon (x=lon, y=lat). Accepts (lat, lon) pairs, a CAP string
    "lat,lon lat,lon ...", or a shapely Polygon in WGS84. Refuses open, short, swapped or invalid rings."""
    if isinstance(polygon, Polygon):
        return _check_ring([(y, x) for x, y in polygon.exterior.coords])
    if isinstance(polygon, str):
        pairs = []
        for i, tok in enumerate(polygon.split(), 1):
            try:
                lat_s, lon_s = tok.split(",")
                pairs.append((float(lat_s), float(lon_s)))
            except ValueError:
                raise AlertError(f"polygon point {i} {tok!r}: expected 'lat,lon'") from None
        return _check_ring(pairs)
    try:
        pairs = [(float(a), float(b)) for a, b in polygon]
    except (TypeError, ValueError):
        raise AlertError("polygon: expected a list of (lat, lon) pairs") from None
    return _check_ring(pairs)


def _check_ring(pairs: Sequence[tuple[float, float]]) -> Polygon:
    if len(pairs) < 4:
        raise AlertError(f"polygon has {len(pairs)} points: a closed ring needs at least 4 (first = last)")
    for i, (lat, lon) in enumerate(pairs, 1):
        if not (math.isfinite(lat) and math.isfinite(lon)):
            raise AlertError(f"polygon point {i} ({lat}, {lon}) is not a finite number")
        if abs(lat) > 90 and abs(lon) <= 90:
            raise AlertError(f"polygon point {i} ({lat}, {lon}) looks like lon,lat: polygons are lat,lon")
        if abs(lat) > 90 or abs(lon) > 180:
            raise AlertError(f"polygon point {i} ({lat}, {lon}) is out of range")
    if tuple(pairs[0]) != tuple(pairs[-1]):
        raise AlertError(f"polygon is not closed: first point {tuple(pairs[0])} differs from last "
                         f"{tuple(pairs[-1])}")
    poly = Polygon([(lon, lat) for lat, lon in pairs])
    if not poly.is_valid:
        why = shapely.is_valid_reason(poly)
        if why.startswith("Self-intersection"):
            x, y = why[why.index("[") + 1:why.index("]")].split()[:2]
            raise AlertError(f"polygon crosses itself near {float(y):.5f},{float(x):.5f} (lat,lon): "
                             "draw it without crossing edges")
        raise AlertError(f"polygon is not a valid area: {why}")
    if poly.area == 0:
        raise AlertError("polygon encloses no area")
    return poly


# ---------------------------------------------------------------- the area


def _as_wgs84(point: Point) -> Point:
    if point.crs == "wgs84":
        return point
    from incidents.coords import to_wgs84 as convert
    return convert(point)


def _check_radius(radius_m: Any, max_m: float) -> float:
    if isinstance(radius_m, bool) or not isinstance(radius_m, (int, float)) or not math.isfinite(radius_m):
        raise AlertError(f"radius {radius_m!r} is not a number of metres")
    if radius_m <= 0:
        raise AlertError(f"radius {radius_m:g} m: must be more than 0 m")
    if radius_m > max_m:
        raise AlertError(f"radius {radius_m:g} m is more than {max_m / 1000:g} km: warn by district or "
                         "draw a polygon of the hazard instead")
    return float(radius_m)


def _districts_at(p: Point, type: str):
    row = admin.locate_point(p.lon, p.lat)
    if row is None:
        raise AlertError(f"{p.lat:.5f},{p.lon:.5f} is not on Guangdong's land: the default area of {type} is "
                         "its district, so give a radius or a polygon")
    return row


def build_area(point: Point, *, radius_m: float | None = None, polygon: Any = None, type: str,
               level: str) -> AlertArea:
    """The warned area around an incident: the officer's radius or polygon, else the type/level rule;
    clipped to Guangdong's land, with its population and districts. Raises AlertError."""
    _check_level(level)
    rs = rules()
    p = _as_wgs84(point)
    if radius_m is not None and polygon is not None:
        raise AlertError("give a radius or a polygon for the warning area, not both")
    requested_polygon, whole_units = None, False
    if polygon is not None:
        requested = parse_polygon(polygon)
        if to_metric(requested).area > math.pi * rs.max_radius_m ** 2:
            raise AlertError(f"polygon covers more than a {rs.max_radius_m / 1000:g} km circle: keep the "
                             "warning to the hazard, or warn by district")
        requested_polygon = [(round(y, 6), round(x, 6)) for x, y in requested.exterior.coords]
        radius, reason = None, f"officer's polygon ({len(requested_polygon) - 1} vertices)"
    elif radius_m is not None:
        radius = _check_radius(radius_m, rs.max_radius_m)
        requested, reason = circle_wgs84(p, radius), f"officer's radius {radius:g} m"
    else:
        radius, reason = warning_radius_m(type, level)
        if radius is None:
            row = _districts_at(p, type)
            requested = row.geometry
            requested_polygon, whole_units = cap_ring(requested), True
            reason = f"{reason}: {row.district_name}"
        else:
            requested = circle_wgs84(p, radius)
    province = admin.province_shape()  # prepared: the covers() test is cheap, the intersection is not
    inland = province.covers(requested)
    land = requested if inland else requested.intersection(province)
    if land.is_empty or land.area == 0:
        raise AlertError(f"the warning area around {p.lat:.5f},{p.lon:.5f} has no land in Guangdong")
    land_share = 1.0 if inland else min(1.0, to_metric(land).area / to_metric(requested).area)
    cap_polygon = requested_polygon
    more: tuple = ()
    if land_share < CLIP_KEEP_SHARE:
        rings = cap_rings(land)
        cap_polygon, more = list(rings[0]), tuple(rings[1:])
        reason = f"{reason}; {100 * (1 - land_share):.0f}% was sea or outside Guangdong and is left out"
    total, units, method = _population(land)
    circle = (round(p.lat, 6), round(p.lon, 6), round(radius / 1000, 3)) if radius is not None else None
    return AlertArea(circle=circle, polygon=cap_polygon, geometry_wgs84=land, admin_units=units,
                     population=total, radius_m=radius, reason=reason, population_method=method,
                     land_share=land_share, whole_units=whole_units, more_polygons=more)
