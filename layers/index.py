"""Nearby queries on a point layer: the k nearest features and everything within a radius.

One ``LayerIndex`` per layer, built once: a shapely STRtree over the layer's EPSG:4547 points
(metres), so every distance is a planar distance in CGCS2000 / Gauss-Kruger CM 114E, never degrees.

    from layers import index
    index.nearest("shelter", Point(114.06, 22.54), k=5)            # by layer name (catalog.load)
    index.within("fire_station", Point(113.32, 23.12), 3000)
    ix = index.LayerIndex(gdf, x_m, y_m)                          # or on any WGS84 point GeoDataFrame
    ix.nearest(Point(113.917, 22.541, "gcj02"), k=3, radius_m=2000)

Each result is a JSON-safe dict: ``id, name, lon, lat`` (WGS84), ``distance_m`` (rounded to 0.1 m)
and the layer's other columns (numpy scalars turned into Python ones, NaN into None), sorted by
distance then id so equal answers come back in the same order every time.

Query points may be in any datum: they are converted to WGS84 (incidents.coords.to_wgs84) first.
"""
from __future__ import annotations

import functools
import math
import threading
from typing import Any

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from incidents.model import Point
from layers.errors import LayerError

METRIC = "EPSG:4547"  # same as incidents.admin.METRIC
WGS84 = "EPSG:4326"
_RESERVED = ("id", "name", "lon", "lat", "distance_m")


@functools.lru_cache(maxsize=1)
def _to_metric() -> Transformer:
    return Transformer.from_crs(WGS84, METRIC, always_xy=True)


@functools.lru_cache(maxsize=1)
def _to_wgs84() -> Transformer:
    return Transformer.from_crs(METRIC, WGS84, always_xy=True)


def as_wgs84(point: Point) -> Point:
    """The point in WGS84 (GCJ-02 and BD-09 points are converted by incidents.coords)."""
    if not isinstance(point, Point):
        raise LayerError(f"query point must be an incidents.model.Point, got {type(point).__name__}")
    if point.crs == "wgs84":
        return point
    from incidents.coords import to_wgs84  # imported on use: incidents.coords owns the datum formulas

    return to_wgs84(point)


def metric_xy(point: Point) -> tuple[float, float]:
    """EPSG:4547 metres of a point in any datum."""
    p = as_wgs84(point)
    x, y = _to_metric().transform(p.lon, p.lat)
    if not (math.isfinite(x) and math.isfinite(y)):
        raise LayerError(f"point ({p.lon}, {p.lat}) cannot be projected to {METRIC}")
    return float(x), float(y)


def metric_to_wgs84(geom):
    """A shapely geometry in EPSG:4547 metres back to WGS84 lon/lat."""
    tr = _to_wgs84()
    return shapely.transform(geom, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))


def wgs84_to_metric(geom):
    """A shapely geometry in WGS84 lon/lat to EPSG:4547 metres."""
    tr = _to_metric()
    return shapely.transform(geom, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))


def json_safe(value: Any) -> Any:
    """A value a JSON encoder and a Dash callback accept: Python scalars, None for NaN/NA."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _check_radius(radius_m: float | None, *, required: bool) -> float | None:
    if radius_m is None:
        if required:
            raise LayerError("radius_m is required (metres, > 0)")
        return None
    if isinstance(radius_m, bool) or not isinstance(radius_m, (int, float)) \
            or not math.isfinite(radius_m) or radius_m <= 0:
        raise LayerError(f"radius_m must be a finite number of metres > 0, got {radius_m!r}")
    return float(radius_m)


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise LayerError(f"k must be a whole number >= 1, got {k!r}")
    return int(k)


class LayerIndex:
    """A spatial index over one point layer (gdf in WGS84; x_m/y_m its EPSG:4547 coordinates)."""

    def __init__(self, gdf, x_m, y_m, *, name: str = "layer") -> None:
        x = np.asarray(x_m, dtype=float)
        y = np.asarray(y_m, dtype=float)
        if len(x) != len(gdf) or len(y) != len(gdf):
            raise LayerError(f"layer {name}: x_m/y_m have {len(x)}/{len(y)} values for {len(gdf)} rows")
        if len(gdf) and not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise LayerError(f"layer {name}: some EPSG:4547 coordinates are not finite")
        for col in ("id", "name"):
            if col not in gdf.columns:
                raise LayerError(f"layer {name}: column {col!r} is missing")
        self.name = name
        self.x_m, self.y_m = x, y
        self.tree = shapely.STRtree(shapely.points(x, y))
        geom = gdf.geometry
        self._lon = geom.x.to_numpy(dtype=float) if len(gdf) else np.empty(0)
        self._lat = geom.y.to_numpy(dtype=float) if len(gdf) else np.empty(0)
        self._ids = gdf["id"].astype(str).to_numpy(dtype=object)
        # rank of each id in string order: ties in distance are broken by id, compared as ints
        self._id_rank = np.empty(len(self._ids), dtype=np.int64)
        self._id_rank[np.argsort(self._ids.astype(str), kind="stable")] = np.arange(len(self._ids))
        self._names = gdf["name"].to_numpy()
        extra = [c for c in gdf.columns if c != gdf.geometry.name and c not in _RESERVED]
        self._extra = {c: gdf[c].to_numpy() for c in extra}

    @classmethod
    def for_layer(cls, layer) -> LayerIndex:
        """The index of a catalog Layer (anything with gdf, x_m, y_m and name)."""
        return cls(layer.gdf, layer.x_m, layer.y_m, name=getattr(layer, "name", "layer"))

    def __len__(self) -> int:
        return len(self._ids)

    # -- queries -------------------------------------------------------------------------------
    def nearest(self, point: Point, *, k: int = 5, radius_m: float | None = None) -> list[dict]:
        """The k nearest features (fewer when the layer or the radius holds fewer)."""
        k = _check_k(k)
        radius = _check_radius(radius_m, required=False)
        if len(self) == 0:
            return []
        x, y = metric_xy(point)
        idx = self._nearest_candidates(x, y, k, radius)
        return self._records(idx, x, y, limit=k, radius=radius)

    def within(self, point: Point, radius_m: float) -> list[dict]:
        """Every feature at most radius_m metres away, nearest first."""
        radius = _check_radius(radius_m, required=True)
        if len(self) == 0:
            return []
        x, y = metric_xy(point)
        idx = self.tree.query(shapely.Point(x, y), predicate="dwithin", distance=radius)
        return self._records(idx, x, y, limit=None, radius=radius)

    # -- internals -----------------------------------------------------------------------------
    def _nearest_candidates(self, x: float, y: float, k: int, radius: float | None) -> np.ndarray:
        """Indices of a set that surely holds the k nearest (within radius when given).

        query_nearest gives the distance d1 of the nearest feature; every feature within r of the
        point is returned by a dwithin query, so once that set holds k features it holds the k
        nearest. r starts from d1 and the layer's mean spacing and doubles until k are found.
        """
        q = shapely.Point(x, y)
        if k >= len(self):
            if radius is None:
                return np.arange(len(self))
            return self.tree.query(q, predicate="dwithin", distance=radius)
        first, dist = self.tree.query_nearest(q, max_distance=radius, return_distance=True,
                                              all_matches=True)
        if len(first) == 0:
            return first
        if k <= len(first):
            return first
        r = max(float(dist[0]), 1.0) * 1.5
        while True:
            if radius is not None and r >= radius:
                return self.tree.query(q, predicate="dwithin", distance=radius)
            idx = self.tree.query(q, predicate="dwithin", distance=r)
            if len(idx) >= k:
                return idx
            # grow by the ratio suggested by the count found so far (area ~ r^2), at least double
            r *= max(2.0, math.sqrt(k / max(len(idx), 1)) * 1.2)

    def _records(self, idx: np.ndarray, x: float, y: float, *, limit: int | None,
                 radius: float | None) -> list[dict]:
        idx = np.asarray(idx, dtype=np.intp)
        d = np.hypot(self.x_m[idx] - x, self.y_m[idx] - y)
        if radius is not None:
            keep = d <= radius
            idx, d = idx[keep], d[keep]
        order = np.lexsort((self._id_rank[idx], d))  # by distance, ties by id
        if limit is not None:
            order = order[:limit]
        out = []
        for j in order:
            i = int(idx[j])
            rec = {"id": self._ids[i], "name": json_safe(self._names[i]),
                   "lon": float(self._lon[i]), "lat": float(self._lat[i]),
                   "distance_m": round(float(d[j]), 1)}
            for col, values in self._extra.items():
                rec[col] = json_safe(values[i])
            out.append(rec)
        return out


# -- by layer name (catalog) ------------------------------------------------------------------
_CACHE: dict[tuple[object, str], tuple[object, LayerIndex]] = {}
_LOCK = threading.Lock()


def index_for(layer: str, catalog=None) -> LayerIndex:
    """The index of a catalog layer, built on first use and rebuilt if the catalog reloads it."""
    from layers.catalog import BUNDLED

    catalog = catalog or BUNDLED
    loaded = catalog.load(layer)
    with _LOCK:
        hit = _CACHE.get((catalog, layer))
        if hit is not None and hit[0] is loaded:
            return hit[1]
    ix = LayerIndex.for_layer(loaded)
    with _LOCK:
        _CACHE[(catalog, layer)] = (loaded, ix)
    return ix


def nearest(layer: str, point: Point, *, k: int = 5, radius_m: float | None = None, catalog=None) -> list[dict]:
    """The k nearest features of a catalog layer to the point (any datum), nearest first."""
    return index_for(layer, catalog).nearest(point, k=k, radius_m=radius_m)


def within(layer: str, point: Point, radius_m: float, *, catalog=None) -> list[dict]:
    """Every feature of a catalog layer within radius_m metres of the point, nearest first."""
    return index_for(layer, catalog).within(point, radius_m)
