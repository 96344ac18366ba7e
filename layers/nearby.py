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
camera layer the pull-up covers the circle: today's k nearest, plus the camera nearest the centre of each cell
of a grid over the circle (the grid is coarsened until the picks fit ``COVER_MAX`` in all), so an officer
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
from layers.index import index_for, metric_xy, nearest, wgs84_to_metric
from layers.routing import rank_by_drive_time, road_graph

DRIVE_RANKED = frozenset({"fire_station"})
CANDIDATES_PER_RANK = 2      # straight-line nearest 2k, then the k fastest by road
AREA_COVERED = frozenset({"camera"})   # layers whose pull-up spreads over the uncertainty circle
COVER_MAX = 50               # at most this many features in an area-covering answer (or k, if larger)
GRID_COARSEN = 1.1           # the grid's cell grows by this factor until its picks fit


def around(layer: str, point: Point, *, k: int = 5, radius_m: float | None = None,
           catalog: Catalog = BUNDLED, uncertainty_m: float | None = 0.0) -> list[dict]:
    """The k features of ``layer`` nearest ``point``; drive-ranked layers fastest first with ``drive_rank``.
    ``uncertainty_m`` > 0 marks them approximate and spreads the camera pull-up over the circle."""
    u = _check_uncertainty(uncertainty_m)
    if layer not in DRIVE_RANKED:
        items = nearest(layer, point, k=k, radius_m=radius_m, catalog=catalog)
    else:
        cands = nearest(layer, point, k=k * CANDIDATES_PER_RANK, radius_m=radius_m, catalog=catalog)
        ranked = rank_by_drive_time(point, cands, graph=road_graph(data_dir=catalog.data_dir))
        items = [dict(d, drive_rank=i + 1) for i, d in enumerate(ranked[:k])]
    if u == 0.0:
        return items
    if layer in AREA_COVERED:
        reach = u if radius_m is None else min(u, float(radius_m))
        items = _cover(layer, point, items, reach, cap=max(COVER_MAX, len(items)), catalog=catalog)
    return [_approximate(d, u) for d in items]


def _check_uncertainty(value: float | None) -> float:
    """Metres >= 0 (None is 0); anything else is refused in one line."""
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0:
        raise LayerError(f"uncertainty_m must be a finite number of metres >= 0, got {value!r}")
    return float(value)


def _approximate(item: dict, u: float) -> dict:
    d = item.get("distance_m")
    inside = d is not None and d <= u
    return dict(item, approximate=True, distance_uncertainty_m=float(round(u)), in_uncertainty_area=inside)


def _cover(layer: str, point: Point, base: list[dict], reach: float, *, cap: int, catalog: Catalog) -> list[dict]:
    """``base`` plus features spread over the circle of ``reach`` metres (a grid pick), at most ``cap``,
    ordered by distance then id."""
    if reach <= 0 or cap <= len(base):
        return base
    inside = index_for(layer, catalog).within(point, reach)   # nearest first, ties by id
    taken = {d["id"] for d in base}
    inside = [d for d in inside if d["id"] not in taken]
    if not inside:
        return base
    xy = _metric(inside)
    cx, cy = metric_xy(point)
    picks = grid_picks(xy, (cx - reach, cy - reach), reach, slots=cap - len(base))
    chosen = base + [inside[i] for i in picks]
    order = sorted(range(len(chosen)), key=lambda i: (chosen[i]["distance_m"], str(chosen[i]["id"])))
    return [chosen[i] for i in order]


def grid_picks(xy: np.ndarray, origin: tuple[float, float], reach: float, *, slots: int) -> list[int]:
    """Row numbers of ``xy`` (metres), one per occupied cell of a square grid from ``origin`` over a circle
    of radius ``reach``: in each cell the point nearest the cell's centre (ties: the lower row). The cell
    starts so that about ``slots`` cells cover the circle and grows until at most ``slots`` are occupied."""
    if slots < 1 or len(xy) == 0:
        return []
    ox, oy = origin
    cell = reach * math.sqrt(math.pi / slots)
    while True:
        cols = np.floor((xy[:, 0] - ox) / cell).astype(np.int64)
        rows = np.floor((xy[:, 1] - oy) / cell).astype(np.int64)
        keys = cols * (1 << 20) + rows
        if len(np.unique(keys)) <= slots:
            break
        cell *= GRID_COARSEN
    centre_x, centre_y = ox + (cols + 0.5) * cell, oy + (rows + 0.5) * cell
    d = np.hypot(xy[:, 0] - centre_x, xy[:, 1] - centre_y)
    order = np.lexsort((np.arange(len(xy)), d, keys))    # by cell, then nearest its centre, then row
    first = np.ones(len(order), dtype=bool)
    first[1:] = keys[order][1:] != keys[order][:-1]
    return sorted(int(i) for i in order[first])


def _metric(items: list[dict]) -> np.ndarray:
    """EPSG:4547 metres (n x 2) of WGS84 ``lon``/``lat`` records."""
    pts = shapely.points([d["lon"] for d in items], [d["lat"] for d in items])
    return shapely.get_coordinates(wgs84_to_metric(pts))
