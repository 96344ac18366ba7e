"""People inside an area: 2020 census district totals spread evenly over each district's land.

    from layers.population import population_within, circle_wgs84, admin_units_within
    area = circle_wgs84(Point(114.06, 22.54), 3000)      # a true 3 km circle (built in EPSG:4547)
    est = population_within(area)                         # PopulationEstimate
    est.total, est.units[0]                               # 214000, {adcode, name, city, population, share}

Method: the area (WGS84) is densified and projected to EPSG:4547, intersected with the district
polygons (incidents.admin.districts(), projected once and indexed with an STRtree), and each district
contributes ``population × intersection area / district area``. There is no population grid for
Guangdong in the bundled data (see data/SOURCES.md), so people are assumed evenly spread over each
district: an estimate good for orders of magnitude, not for a head count. Districts' polygons are land
only, so sea inside the area adds nobody. 澳门大学横琴校区 (440499) has no census row: it is listed with
population 0 and a note.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from incidents import admin
from incidents.model import Point
from layers.errors import LayerError
from layers.index import metric_to_wgs84, metric_xy, wgs84_to_metric

METHOD = "area-weighted from 2020 census district totals and district polygons (EPSG:4547)"
DENSIFY_DEG = 0.005     # ~500 m: straight WGS84 edges stay straight-enough once projected
CIRCLE_QUAD_SEGS = 32   # 128 vertices per circle: area within 0.04% of pi r^2
MAX_RADIUS_M = 1_000_000


@dataclass(frozen=True)
class PopulationEstimate:
    total: int
    units: list[dict] = field(default_factory=list)   # {adcode, name, city, population, share}
    method: str = METHOD
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"total": self.total, "units": [dict(u) for u in self.units], "method": self.method,
                "notes": list(self.notes)}


@dataclass(frozen=True)
class _Districts:
    adcodes: list[str]
    names: list[str]
    cities: list[str]
    population: np.ndarray      # NaN where the census has no row
    geoms: np.ndarray           # EPSG:4547 polygons, prepared
    areas: np.ndarray           # m^2 of those polygons
    tree: shapely.STRtree


@functools.lru_cache(maxsize=2)
def _districts(root) -> _Districts:
    d = admin.districts(root)
    geoms = wgs84_to_metric(d.geometry.to_numpy())     # the shared transformer (GeoDataFrame.to_crs made its own)
    shapely.prepare(geoms)
    return _Districts(adcodes=d["district_adcode"].astype(str).tolist(),
                      names=d["district_name"].astype(str).tolist(),
                      cities=d["city_name"].astype(str).tolist(),
                      population=d["population"].to_numpy(dtype=float), geoms=geoms,
                      areas=shapely.area(geoms), tree=shapely.STRtree(geoms))


def _projected_districts() -> _Districts:
    # keyed by the data directory, like incidents.admin's own caches
    return _districts(admin.data_dir())


def circle_wgs84(point: Point, radius_m: float):
    """A circle of radius_m metres around the point (any datum), built in EPSG:4547, as WGS84."""
    if isinstance(radius_m, bool) or not isinstance(radius_m, (int, float)) \
            or not math.isfinite(radius_m) or not 0 < radius_m <= MAX_RADIUS_M:
        raise LayerError(f"circle radius_m must be metres in (0, {MAX_RADIUS_M:,}], got {radius_m!r}")
    x, y = metric_xy(point)
    return metric_to_wgs84(shapely.Point(x, y).buffer(float(radius_m), quad_segs=CIRCLE_QUAD_SEGS))


def _area_metric(area_wgs84):
    if not isinstance(area_wgs84, BaseGeometry):
        raise LayerError(f"area must be a shapely polygon in WGS84, got {type(area_wgs84).__name__}")
    if area_wgs84.is_empty:
        return area_wgs84
    if area_wgs84.geom_type not in ("Polygon", "MultiPolygon", "GeometryCollection"):
        raise LayerError(f"area must be a polygon, got a {area_wgs84.geom_type}: "
                         "use circle_wgs84(point, radius_m) for a point")
    minx, miny, maxx, maxy = area_wgs84.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise LayerError(f"area bounds {area_wgs84.bounds} are not WGS84 lon/lat degrees")
    geom = area_wgs84 if area_wgs84.is_valid else shapely.make_valid(area_wgs84)
    geom = shapely.segmentize(geom, DENSIFY_DEG)
    projected = wgs84_to_metric(geom)
    if not np.isfinite(shapely.get_coordinates(projected)).all():
        raise LayerError(f"area bounds {area_wgs84.bounds} cannot be projected to {admin.METRIC}")
    return projected


def _overlaps(area_m) -> list[tuple[int, float]]:
    """(district index, m^2 of the district inside the area) for each district the area touches."""
    dist = _projected_districts()
    out = []
    shapely.prepare(area_m)
    for i in dist.tree.query(area_m, predicate="intersects"):
        g = dist.geoms[i]
        inside = dist.areas[i] if area_m.contains(g) else shapely.intersection(area_m, g).area
        if inside > 0:
            out.append((int(i), min(float(inside), float(dist.areas[i]))))
    return out


def population_within(area_wgs84) -> PopulationEstimate:
    """The people inside a WGS84 area (Polygon/MultiPolygon), by district, largest first."""
    area_m = _area_metric(area_wgs84)
    if area_m.is_empty:
        return PopulationEstimate(total=0)
    dist = _projected_districts()
    units, notes = [], []
    for i, inside in _overlaps(area_m):
        share = inside / dist.areas[i]
        pop = dist.population[i]
        if math.isnan(pop):
            notes.append(f"{dist.names[i]} ({dist.adcodes[i]}) has no 2020 census figure: counted as 0")
            pop = 0.0
        units.append({"adcode": dist.adcodes[i], "name": dist.names[i], "city": dist.cities[i],
                      "population": int(round(pop * share)), "share": round(float(share), 6)})
    units.sort(key=lambda u: (-u["population"], -u["share"], u["adcode"]))
    total = sum(u["population"] for u in units)
    return PopulationEstimate(total=total, units=units, notes=tuple(notes))


def admin_units_within(area_wgs84) -> list[dict]:
    """The districts the area touches: {adcode, name, city, share} (share of the district inside)."""
    return [{k: u[k] for k in ("adcode", "name", "city", "share")}
            for u in population_within(area_wgs84).units]
