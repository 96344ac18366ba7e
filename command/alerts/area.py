"""The warned area of a public warning: default radius rules, the officer's radius or polygon, land clipping,
and the CAP shapes (circle or polygons, plus district geocodes) that carry it to receivers.

    from command.alerts.area import warning_radius_m, build_area
    warning_radius_m("gas_explosion", "III")        # (800.0, "gas_explosion level III: 800 m circle (ERG ...)")
    area = build_area(point, type="gas_explosion", level="III")            # the rule's circle
    area = build_area(point, radius_m=1200, type="fire", level="IV")       # the officer's radius wins
    area = build_area(point, polygon=[(23.13, 113.31), ..., (23.13, 113.31)], type="flood", level="II")
    area = build_area(point, type="flood", level="II", data_dir=settings.data_dir)   # a deployment's data
    area.circle        # (lat, lon, radius_km) as CAP writes it, the requested radius
    area.polygon, area.more_polygons   # closed (lat, lon) rings: the officer's, or the land's outline
    area.population, area.admin_units  # people and districts inside the land part of the area
    area.geocodes      # GB/T 2260 codes of a district-wide warning (the area IS those districts)

Rules are data (``data/alerting/warning_rules.yaml``, reasons in ``data/alerting/README.md``). The area is
kept to the hazard: too-wide targeting is the most reported failure of public alerting (US WEA lessons),
so a circle is never widened to whole districts; only area-wide hazards (flood, typhoon) default to them.

Targeting (what a receiver does with the <area>: the union of its shapes is warned):
- the shapes cover all of Guangdong's land inside the requested circle (a true circle on the ellipsoid, as a
  receiver reads CAP's <circle>) or polygon (straight edges in lat/lon, as a receiver reads <polygon>);
- they reach at most ``REACH_M`` = 161 m (the US WEA 0.1-mile overshoot rule) beyond that land, so no sea,
  Hong Kong, Macau or neighbouring province beyond it; a circle or polygon that would reach further is sent
  as land outlines instead (several rings of <= ``MAX_CAP_VERTICES``);
- a district-wide warning carries the district's outline to the same rule, and its geocode.
Both are checked on the rings as written (5 decimals); if the vertex budget cannot hold the 161 m rule the
reach actually used is in ``AlertArea.reach_m`` and in the reason, never silently.
澳门大学横琴校区 (440499) is under Macau's jurisdiction: never a Guangdong unit, never a geocode.

Every distance and area is measured in EPSG:4547. Refusals raise ``AlertError`` with one clear line. No
settings are read here: the door passes ``data_dir`` (default: the bundled ``data/``).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import shapely
from pydantic import BaseModel, ConfigDict
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon, box

from command.errors import AlertError
from incidents import admin
from incidents.model import LEVELS, Point
from layers.index import metric_to_wgs84 as to_wgs84
from layers.index import wgs84_to_metric as to_metric
from layers.population import population_within
from settings import load_yaml_model

RULES_FILE = "alerting/warning_rules.yaml"
REACH_M = 161.0            # US WEA: a warning may reach 0.1 mile (161 m) beyond its target area, no more
MAX_CAP_VERTICES = 100     # per ring, closing point included: common limit of WEA / cell-broadcast gateways
MAX_CAP_POLYGONS = 64      # rings of one area: islands 322 m apart cannot merge within 161 m (万山群岛 ~45)
MAX_CAP_TOTAL_VERTICES = 1500   # all rings together: ~28 KB of coordinates per language block
MIN_UNIT_M2 = 1000.0       # an admin unit with less of its land inside the area is not warned (border slivers)
CIRCLE_VERTICES = 256      # the land clip's circle: circumscribes the true circle (covers it), 0.008% wider
NOT_GUANGDONG = {"440499": "澳门大学横琴校区: under Macau's jurisdiction (NPC Standing Committee, 2009)"}
# (margin, tolerance) in metres: the land is buffered by the margin, then simplified by the tolerance, so the
# outline lies between ~margin - tolerance and margin + tolerance from the land. The first pair that fits the
# vertex budget and passes the checks wins; pairs past REACH_M are the last resort (reported in reach_m).
_STEPS = ((85.0, 70.0), (60.0, 40.0), (30.0, 15.0), (160.0, 150.0), (300.0, 280.0), (600.0, 550.0),
          (1200.0, 1100.0), (2500.0, 2300.0), (5000.0, 4500.0))
_DENSIFY_DEG = 0.002       # a receiver draws polygon edges straight in lat/lon: checked as such (~200 m steps)
_GEOD = Geod(ellps="WGS84")
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
    more_polygons: tuple = ()                          # the other rings (land pieces, islands): CAP gets all
    reach_m: float | None = None                       # the rings reach at most this far beyond the land

    @property
    def geocodes(self) -> list[str]:
        """GB/T 2260 codes that ARE the area (a district-wide warning); none for a circle or polygon, where a
        district code would widen the warned area to the whole district (CAP's shapes are a union)."""
        return [u["adcode"] for u in self.admin_units] if self.whole_units else []

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
        if self.geocodes:
            d["geocodes"] = list(self.geocodes)
        return {"area": d, "population": self.population, "radius_m": self.radius_m,
                "admin_units": [u["adcode"] for u in self.admin_units], "reason": self.reason,
                "land_share": round(self.land_share, 3), "reach_m": self.reach_m}


# ---------------------------------------------------------------- rules


@functools.lru_cache(maxsize=4)
def _load_rules(path: Path) -> WarningRules:
    if not path.is_file():
        raise AlertError(f"warning rules {path}: file not found")
    rules = load_yaml_model(path, WarningRules, what="warning rules", error=AlertError)
    for key, rule in [*rules.types.items(), ("default", rules.default)]:
        if rule.area == "circle" and (not rule.radius_m or set(rule.radius_m) != set(LEVELS)):
            raise AlertError(f"warning rules {path}: {key}: a circle rule needs radius_m for I, II, III and IV")
    return rules


def rules(data_dir: Path | None = None) -> WarningRules:
    """The warning rules of ``data_dir`` (default: the bundled data), cached."""
    return _load_rules(admin.data_dir(data_dir) / RULES_FILE)


def rule_for(type: str, *, data_dir: Path | None = None) -> tuple[TypeRule, bool]:
    """(rule, is_default): the type's own rule, or the default rule for a type with none."""
    r = rules(data_dir)
    if type in r.types:
        return r.types[type], False
    return r.default, True


def response_types(type: str, *, data_dir: Path | None = None) -> list[str]:
    """CAP responseType values for a warning about this type (a Cancel sends AllClear instead)."""
    return list(rule_for(type, data_dir=data_dir)[0].response)


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise AlertError(f"level {level!r} is not one of I, II, III, IV")


def warning_radius_m(type: str, level: str, *, data_dir: Path | None = None) -> tuple[float | None, str]:
    """The default radius (metres) for a type and level and why; None for area-wide (district) types."""
    _check_level(level)
    rule, is_default = rule_for(type, data_dir=data_dir)
    note = f"; {rule.note_zh}" if rule.note_zh else ""
    if rule.area == "districts":
        return None, f"{type} level {level}: whole district(s) at the incident ({rule.basis}){note}"
    radius = float(rule.radius_m[level])
    which = f"no rule for {type!r}, default" if is_default else type
    return radius, f"{which} level {level}: {radius:g} m circle ({rule.basis}){note}"




# ---------------------------------------------------------------- land, circles, units


@functools.lru_cache(maxsize=2)
def _land(root: Path):
    """Guangdong's land (the Amap outline) in EPSG:4547, prepared, and its districts (metric, by adcode)."""
    land = to_metric(admin.province_shape(root))
    shapely.prepare(land)
    d = admin.districts(root)
    districts = dict(zip(d["district_adcode"].astype(str), to_metric(d.geometry.to_numpy())))
    return land, districts


@functools.lru_cache(maxsize=2)
def _district_km2(root: Path) -> dict[str, float]:
    d = admin.districts(root)
    return dict(zip(d["district_adcode"], d["area_km2"]))


def geodesic_circle(lat: float, lon: float, radius_m: float, n: int = CIRCLE_VERTICES) -> Polygon:
    """The CAP circle as a receiver reads it (geodesic radius on WGS84) as an n-gon in WGS84 that
    circumscribes it: every point within radius_m of the centre is inside (its edges touch the circle)."""
    az = np.linspace(0.0, 360.0, n, endpoint=False)
    r = np.full(n, radius_m / math.cos(math.pi / n))
    x, y, _ = _GEOD.fwd(np.full(n, lon), np.full(n, lat), az, r)
    return Polygon(np.column_stack([x, y]))


def _polygon_metric(poly_wgs84):
    """A WGS84 polygon with straight lat/lon edges (a receiver's reading) in EPSG:4547."""
    return to_metric(shapely.segmentize(poly_wgs84, _DENSIFY_DEG))


def _population(area_wgs84, root: Path) -> tuple[int, list[dict], str]:
    """(total, [{adcode, name, population}], method) inside the area; only Guangdong's own units."""
    est = population_within(area_wgs84)
    km2 = _district_km2(root)
    # Shared borders touch the neighbours along a line: a unit is warned only with real land inside.
    units = [{"adcode": str(u["adcode"]), "name": u["name"], "population": int(u["population"])}
             for u in est.units if str(u["adcode"]) not in NOT_GUANGDONG
             and u["share"] * km2.get(str(u["adcode"]), 0.0) * 1e6 >= MIN_UNIT_M2]
    return int(est.total), units, est.method     # 440499 has no census row: it adds nobody to the total


# ---------------------------------------------------------------- CAP rings


def ring_text(ring: Sequence[tuple[float, float]]) -> str:
    """A (lat, lon) ring as CAP writes a <polygon>: "lat,lon lat,lon ..." to 5 decimals (~1 m)."""
    return " ".join(f"{la:.5f},{lo:.5f}" for la, lo in ring)


def _polygons(geom) -> list[Polygon]:
    if geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    return [p for g in getattr(geom, "geoms", []) for p in _polygons(g)]


def _split(poly: Polygon, max_vertices: int) -> list[Polygon]:
    """Hole-free pieces of <= max_vertices (closing point included) whose union is the WGS84 polygon: cut
    at the median vertex across the longer side (through a hole, when it has one) until every piece fits.
    Cuts run along a meridian or parallel at a 5-decimal value, so a cut edge is straight in lat/lon as a
    receiver reads it and stays so when a neighbouring piece is cut again (no gap at the T)."""
    out, todo = [], [poly]
    while todo:
        p = todo.pop()
        if not p.interiors and len(p.exterior.coords) <= max_vertices:
            out.append(p)
            continue
        x0, y0, x1, y1 = p.bounds
        vertical = (x1 - x0) >= (y1 - y0)
        if p.interiors:
            hole = Polygon(max(p.interiors, key=lambda r: Polygon(r).area)).representative_point()
            cut = hole.x if vertical else hole.y
        else:
            xy = shapely.get_coordinates(p.exterior)
            cut = float(np.median(xy[:, 0] if vertical else xy[:, 1]))
        cut = round(cut, 5)
        halves = ((box(x0 - 1, y0 - 1, cut, y1 + 1), box(cut, y0 - 1, x1 + 1, y1 + 1)) if vertical else
                  (box(x0 - 1, y0 - 1, x1 + 1, cut), box(x0 - 1, cut, x1 + 1, y1 + 1)))
        pieces = [q for h in halves for q in _polygons(p.intersection(h)) if q.area > 0]
        if len(pieces) <= 1:
            out.append(p)           # a sliver that cannot be cut: the size check refuses this outline
            continue
        todo.extend(pieces)
    return out


def _latlon_ring(part_wgs84: Polygon) -> tuple[tuple[float, float], ...]:
    out: list[tuple[float, float]] = []
    for lon, lat in np.asarray(part_wgs84.exterior.coords):
        p = (round(float(lat), 5), round(float(lon), 5))
        if not out or out[-1] != p:
            out.append(p)
    if out[0] != out[-1]:
        out.append(out[0])
    return tuple(out)


def _rings(shape_m, max_vertices: int) -> list[tuple[tuple[float, float], ...]]:
    """The metric shape as (lat, lon) rings of <= max_vertices, largest first (see _split)."""
    pieces = [q for p in _polygons(to_wgs84(shape_m)) for q in _split(p, max_vertices)]
    rings = [_latlon_ring(q) for q in sorted(pieces, key=lambda q: q.area, reverse=True)]
    return [r for r in rings if len(r) >= 4]


def _as_read(rings) -> Any:
    """The union of rings as a receiver draws them (straight lat/lon edges), in EPSG:4547."""
    polys = shapely.make_valid(np.array([shapely.polygons(np.asarray(r)[:, ::-1]) for r in rings]))
    return _polygon_metric(shapely.union_all(polys))     # union first: pieces share their cut edges exactly


def cover_rings(land_m, *, reach_m: float = REACH_M, max_vertices: int = MAX_CAP_VERTICES,
                max_rings: int = MAX_CAP_POLYGONS, max_total: int = MAX_CAP_TOTAL_VERTICES, _limit=None):
    """(rings, reach): closed (lat, lon) rings, largest first, whose union covers ``land_m`` (EPSG:4547) and
    reaches at most ``reach`` metres beyond it; ``reach`` <= reach_m unless the vertex budget cannot hold it.

    The land is buffered by a margin and simplified (topology kept) by a tolerance; what simplification
    pushes past the reach is cut back to land + reach; holes that a receiver could not be told (CAP rings have
    none) are filled where they lie within the reach and cut through where they do not; rings over the vertex
    limit are cut in pieces. The rings as written (5 decimals, lat/lon edges) are checked both ways."""
    if land_m.is_empty:
        raise AlertError("the warning area has no land to outline")
    parts = _polygons(land_m)
    for margin, tol in _STEPS:
        reach = reach_m if margin + tol < reach_m else margin + tol + 1.0
        shape = shapely.union_all([Polygon(p.exterior) for p in _polygons(
            shapely.simplify(land_m.buffer(margin, quad_segs=4), tol, preserve_topology=True))])
        limit = _limit if _limit is not None and reach == reach_m else \
            land_m.buffer(reach, quad_segs=8)              # inscribed in land + reach
        for fix in (False, True):
            if fix:    # simplification slipped: put land back in, cut what went past the reach back
                if land_m.difference(shape).area > 0.01:
                    shape = shapely.union_all([shape, land_m.buffer(margin / 2, quad_segs=2)])
                outer = land_m.buffer(reach - 2.0, quad_segs=4)          # rounding fits in the 2 m
                if shape.difference(outer).area > 0.01:
                    shape = shape.intersection(outer)
            rings = _rings(shape, max_vertices)
            if not rings or len(rings) > max_rings or sum(len(r) for r in rings) > max_total \
                    or max(len(r) for r in rings) > max_vertices:
                break                                      # no fix makes fewer vertices: a coarser step
            read = _as_read(rings)
            if land_m.difference(read).area <= 1.0 and read.difference(limit).area <= 1.0:
                return rings, reach
    raise AlertError(f"the warning area ({len(parts)} land pieces) cannot be outlined within "
                     f"{max_rings} CAP polygons: warn by district or draw a smaller polygon")


def cap_rings(geom_wgs84, max_vertices: int = MAX_CAP_VERTICES,
              max_rings: int = MAX_CAP_POLYGONS) -> list[tuple[tuple[float, float], ...]]:
    """Closed (lat, lon) rings, largest first, covering a WGS84 geometry within REACH_M (see cover_rings)."""
    return cover_rings(to_metric(geom_wgs84), max_vertices=max_vertices, max_rings=max_rings)[0]


@functools.lru_cache(maxsize=256)
def _district_rings(root: Path, adcode: str):
    return cover_rings(_land(root)[1][adcode])


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


def _districts_at(p: Point, type: str, root: Path):
    row = admin.locate_point(p.lon, p.lat, root=root)
    if row is None or str(row.district_adcode) in NOT_GUANGDONG:
        raise AlertError(f"{p.lat:.5f},{p.lon:.5f} is not on Guangdong's land: the default area of {type} is "
                         "its district, so give a radius or a polygon")
    return row


def _inside_circle(land_m, p: Point, radius: float):
    """Drops land pieces that lie wholly in the sliver between the true circle and the clip's circumscribed
    polygon (a rock 2 m outside the circle would otherwise get an outline of its own)."""
    parts = _polygons(land_m)
    if len(parts) < 2:
        return land_m
    centre = to_metric(shapely.Point(p.lon, p.lat))
    keep = []
    for part in parts:
        if part.distance(centre) < 0.99 * radius:          # EPSG:4547 scale is within 0.3%: surely inside
            keep.append(part)
            continue
        xy = shapely.get_coordinates(to_wgs84(part))
        _, _, d = _GEOD.inv(np.full(len(xy), p.lon), np.full(len(xy), p.lat), xy[:, 0], xy[:, 1])
        if d.min() <= radius:
            keep.append(part)
    return shapely.union_all(keep) if len(keep) < len(parts) else land_m


def build_area(point: Point, *, radius_m: float | None = None, polygon: Any = None, type: str,
               level: str, data_dir: Path | None = None) -> AlertArea:
    """The warned area around an incident: the officer's radius or polygon, else the type/level rule;
    clipped to Guangdong's land, with its population and districts, and the CAP shapes that carry it
    (module docstring: what they cover and how far they may reach). ``data_dir``: the deployment's data
    folder (rules and boundaries), default the bundled ``data/``. Raises AlertError."""
    _check_level(level)
    root = admin.data_dir(data_dir)
    rs = rules(root)
    p = _as_wgs84(point)
    if radius_m is not None and polygon is not None:
        raise AlertError("give a radius or a polygon for the warning area, not both")
    land_all, districts = _land(root)
    requested_polygon, whole_units, district = None, False, None
    if polygon is not None:
        requested = parse_polygon(polygon)
        requested_m = _polygon_metric(requested)
        if requested_m.area > math.pi * rs.max_radius_m ** 2:
            raise AlertError(f"polygon covers more than a {rs.max_radius_m / 1000:g} km circle: keep the "
                             "warning to the hazard, or warn by district")
        requested_polygon = [(round(y, 6), round(x, 6)) for x, y in requested.exterior.coords]
        radius, reason = None, f"officer's polygon ({len(requested_polygon) - 1} vertices)"
    else:
        if radius_m is not None:
            radius, reason = _check_radius(radius_m, rs.max_radius_m), f"officer's radius {radius_m:g} m"
        else:
            radius, reason = warning_radius_m(type, level, data_dir=root)
        if radius is None:
            row = _districts_at(p, type, root)
            district = str(row.district_adcode)
            requested_m, whole_units = districts[district], True
            reason = f"{reason}: {row.district_name}"
        else:
            requested_m = _polygon_metric(geodesic_circle(p.lat, p.lon, radius))
    # the clip's circle circumscribes the true one by up to this much: the outline's reach gives it back
    excess = radius * (1 / math.cos(math.pi / CIRCLE_VERTICES) - 1) if radius and district is None else 0.0
    inland = land_all.covers(requested_m)
    land_m = requested_m if inland else shapely.intersection(requested_m, land_all)
    land_m = MultiPolygon(_polygons(land_m)) if land_m.geom_type == "GeometryCollection" else land_m
    if excess and not inland:
        land_m = _inside_circle(land_m, p, radius)
    if land_m.is_empty or land_m.area == 0:
        raise AlertError(f"the warning area around {p.lat:.5f},{p.lon:.5f} has no land in Guangdong")
    land_share = 1.0 if inland else min(1.0, land_m.area / requested_m.area)
    cap_polygon, more, reach = requested_polygon, (), None
    if district is not None:
        rings, reach = _district_rings(root, district)
        cap_polygon, more = list(rings[0]), tuple(rings[1:])
    elif not inland and not requested_m.difference(
            limit := land_m.buffer(REACH_M - excess, quad_segs=8)).area <= 1.0:
        # the circle or polygon as drawn would reach sea, Hong Kong, Macau or another province: send the land
        rings, reach = cover_rings(land_m, reach_m=REACH_M - excess, _limit=limit)
        cap_polygon, more = list(rings[0]), tuple(rings[1:])
        reason = f"{reason}; {100 * (1 - land_share):.0f}% was sea or outside Guangdong and is left out"
    if reach is not None and reach > REACH_M - excess:
        reason = f"{reason}; outline reaches up to {reach:.0f} m beyond the land (more than {REACH_M:g} m: " \
                 "too many pieces for CAP)"
    land = to_wgs84(land_m)
    total, units, method = _population(land, root)
    circle = (round(p.lat, 6), round(p.lon, 6), round(radius / 1000, 3)) \
        if radius is not None and district is None else None
    return AlertArea(circle=circle, polygon=cap_polygon, geometry_wgs84=land, admin_units=units,
                     population=total, radius_m=radius if district is None else None, reason=reason,
                     population_method=method, land_share=land_share, whole_units=whole_units,
                     more_polygons=more, reach_m=reach)
