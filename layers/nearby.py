"""What is around a point, the one way every door asks it: the k nearest features of a layer, and for fire
stations ranked by drive time on the road graph where it covers the route (a labelled straight-line
estimate elsewhere). The service, ``yzt nearby`` and ``yzt demo`` all call this.

    from layers.nearby import around
    around("fire_station", point, k=5, catalog=cat)   # [{id, name, lon, lat, distance_m, drive_time_s,
                                                       #   drive_time_method, drive_rank, ...}, ...]
    around("camera", point, k=5, catalog=cat, uncertainty_m=8600)   # the pull-up covers the area

An uncertain point (``uncertainty_m`` > 0: the place may lie anywhere within that many metres of it, as
the geocoder says for a community, township or district match) makes every answer approximate: each item
carries ``approximate: True``, ``distance_uncertainty_m`` (whole metres, as a Location shows it: the true
distance is ``distance_m`` ± that) and ``in_uncertainty_area`` (the feature lies inside the circle). For the
camera layer the pull-up covers the circle: today's k nearest, plus the camera nearest each point of a square
lattice over the circle (within one step of it; the lattice has at most ``COVER_MAX`` - k points), so an officer
sees cameras over the whole area the incident may be in, not only around the geocoded centre. Everything
is ordered by distance then id. With uncertainty 0 or None the answers are exactly those of a sure point.
Distances are EPSG:4547 metres (layers.index).
"""
from __future__ import annotations

import math

import numpy as np
import shapely

from incidents.model import Point
from layers.catalog import BUNDLED, Catalog
from layers.errors import LayerError
from layers.index import index_for, metric_to_wgs84, metric_xy, wgs84_to_metric
from layers.routing import rank_by_drive_time, road_graph

DRIVE_RANKED = frozenset({"fire_station"})
CANDIDATES_PER_RANK = 2      # straight-line nearest 2k, then the k fastest by road
AREA_COVERED = frozenset({"camera"})   # layers whose pull-up spreads over the uncertainty circle
COVER_MAX = 50               # at most this many features in an area-covering answer (or k, if larger)
MAX_UNCERTAINTY_M = 1_000_000.0   # more than Guangdong's width: a larger radius is a mistake, not a place
LATTICE_GROW = 1.05          # the lattice's step grows by this factor until its points fit


def around(layer: str, point: Point, *, k: int = 5, radius_m: float | None = None,
           catalog: Catalog = BUNDLED, uncertainty_m: float | None = 0.0) -> list[dict]:
    """The k features of ``layer`` nearest ``point``; drive-ranked layers fastest first with ``drive_rank``.
    ``uncertainty_m`` > 0 marks them approximate and spreads the camera pull-up over the circle."""
    u = _check_uncertainty(uncertainty_m)
    ix = index_for(layer, catalog)       # once a call: the catalogue checks the layer's file each time
    if layer not in DRIVE_RANKED:
        items = ix.nearest(point, k=k, radius_m=radius_m)
    else:
        cands = ix.nearest(point, k=k * CANDIDATES_PER_RANK, radius_m=radius_m)
        ranked = rank_by_drive_time(point, cands, graph=road_graph(data_dir=catalog.data_dir))
        items = [dict(d, drive_rank=i + 1) for i, d in enumerate(ranked[:k])]
    if u == 0.0:
        return items
    if layer in AREA_COVERED:
        reach = u if radius_m is None else min(u, float(radius_m))
        items = _cover(ix, point, items, reach, cap=max(COVER_MAX, len(items)))
    return [_approximate(d, u) for d in items]


def _check_uncertainty(value: float | None) -> float:
    """Metres from 0 to MAX_UNCERTAINTY_M (None is 0); anything else is refused in one line."""
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or not 0 <= value <= MAX_UNCERTAINTY_M:
        raise LayerError(f"uncertainty_m must be a number of metres from 0 to {MAX_UNCERTAINTY_M:,.0f}, "
                         f"got {value!r}")
    return float(value)


def _approximate(item: dict, u: float) -> dict:
    d = item.get("distance_m")
    inside = d is not None and d <= u
    return dict(item, approximate=True, distance_uncertainty_m=float(round(u)), in_uncertainty_area=inside)


def _cover(ix, point: Point, base: list[dict], reach: float, *, cap: int) -> list[dict]:
    """``base`` plus features spread over the circle of ``reach`` metres, at most ``cap``, ordered by distance
    then id: around each point of a square lattice over the circle, the feature nearest it (within one lattice
    step, inside the circle). One nearest(k=1) a lattice point (``nearest_each``: one grid pass for all of them
    in memory, one query each in PostGIS), so a dense district costs what a sparse one does."""
    offsets, step = lattice(reach, slots=cap - len(base))
    if not len(offsets):
        return base
    cx, cy = metric_xy(point)
    lonlat = shapely.get_coordinates(metric_to_wgs84(shapely.points(cx + offsets[:, 0], cy + offsets[:, 1])))
    taken, picks = {d["id"] for d in base}, []
    for d in ix.nearest_each(lonlat[:, 0], lonlat[:, 1], radius_m=step):
        if d is not None and d["id"] not in taken:
            taken.add(d["id"])
            picks.append(d)
    if picks:
        xy = _metric(picks)
        dist = np.hypot(xy[:, 0] - cx, xy[:, 1] - cy)
        picks = [dict(d, distance_m=round(float(m), 1)) for d, m in zip(picks, dist) if m <= reach]
    chosen = base + picks
    return sorted(chosen, key=lambda d: (d["distance_m"], str(d["id"])))


def lattice(reach: float, *, slots: int) -> tuple[np.ndarray, float]:
    """Offsets (metres, n x 2) of a square lattice centred on 0 over a circle of radius ``reach``, at most
    ``slots`` points, and its step: about ``slots`` points to begin with, the step growing until they fit.
    Every place in the circle is within step/sqrt(2) of a point (points up to that far beyond the rim count)."""
    if slots < 1 or reach <= 0:
        return np.empty((0, 2)), 0.0
    step = reach * math.sqrt(math.pi / slots)
    while True:
        n = int(reach // step) + 1
        i, j = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
        keep = np.hypot(i, j) * step <= reach + step / math.sqrt(2)   # the rim's places have a point too
        if keep.sum() <= slots:
            return np.column_stack((i[keep], j[keep])).astype(float) * step, step
        step *= LATTICE_GROW


def _metric(items: list[dict]) -> np.ndarray:
    """EPSG:4547 metres (n x 2) of WGS84 ``lon``/``lat`` records."""
    pts = shapely.points([d["lon"] for d in items], [d["lat"] for d in items])
    return shapely.get_coordinates(wgs84_to_metric(pts))
