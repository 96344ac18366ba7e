"""Nearby queries on a point layer: the k nearest features and everything within a radius.

One ``LayerIndex`` per layer, built once: a bucket grid (layers.grid, numpy only) over the layer's EPSG:4547
points (metres), so every distance is a planar distance in CGCS2000 / Gauss-Kruger CM 114E, never degrees.
The grid gives a candidate set that surely holds the answer; exact distances rank it, so nearest-k and
within-r are exact, with ~12 bytes a row for the grid (1M cameras; an STRtree of shapely points ~200) and no scipy.

    from layers import index
    index.nearest("shelter", Point(114.06, 22.54), k=5)            # by layer name (catalog.load)
    index.within("fire_station", Point(113.32, 23.12), 3000)
    ix = index.LayerIndex(gdf, x_m, y_m)                          # or on any WGS84 point GeoDataFrame
    ix.nearest(Point(113.917, 22.541, "gcj02"), k=3, radius_m=2000)
    ix.nearest_each(lons, lats, radius_m=800)      # nearest(k=1) of many WGS84 points in one pass

Each result is a JSON-safe dict: ``id, name, lon, lat`` (WGS84), ``distance_m`` (rounded to 0.1 m)
and the layer's other columns (numpy scalars turned into Python ones, NaN into None), sorted by
distance then id so equal answers come back in the same order every time.

Query points may be in any datum: they are converted to WGS84 (incidents.coords.to_wgs84) first.

By layer name, a catalogue with ``postgis_url`` (``Catalog.of(settings)`` on a postgresql:// database) is
answered by PostGIS (layers.postgis.PostgisLayerIndex, the same answers) for every layer that database's
registry ``yzt_layers`` lists; the list is re-read at most every NAMES_TTL_S seconds, so a layer another process
imports is used within that long, and each PostGIS query re-reads the layer's registry row in the same
statement, so a re-import is never answered stale. Other layers, and every layer of a catalogue without a
database, are answered in memory. A PostGIS failure is one LayerError line.
"""
from __future__ import annotations

import atexit
import math
import threading
import time
from typing import Any

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from incidents.coords import transformer
from incidents.model import Point
from layers.errors import LayerError, UnknownLayerError
from layers.grid import PointGrid

METRIC = "EPSG:4547"  # same as incidents.admin.METRIC
WGS84 = "EPSG:4326"
_RESERVED = ("id", "name", "lon", "lat", "distance_m")


def _to_metric() -> Transformer:
    return transformer(WGS84, METRIC)       # the process's one for the pair (incidents.coords)


def _to_wgs84() -> Transformer:
    return transformer(METRIC, WGS84)


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


def metric_xy_many(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """EPSG:4547 metres of WGS84 points (arrays), as ``metric_xy`` gives each of them."""
    x, y = _to_metric().transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise LayerError(f"point ({float(lon[i])}, {float(lat[i])}) cannot be projected to {METRIC}")
    return x, y


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


def _column(values: Any) -> Any:
    """A column kept as it is stored (Arrow strings stay Arrow: no Python object per row)."""
    arr = getattr(values, "array", values)
    return arr if isinstance(arr, pd.api.extensions.ExtensionArray) else np.asarray(arr)


def _fetcher(values: Any):
    """``fetch(idx)``: the JSON-safe values of rows ``idx`` of a column (as ``json_safe(values[i])`` each),
    read in one go: Arrow text and numbers through Arrow's take (zero-copy chunks), numpy numbers through
    numpy; any other column row by row."""
    import pyarrow as pa
    if isinstance(values, pd.arrays.NumpyExtensionArray):
        values = values.to_numpy()                      # a view of the numbers, not a copy
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        safe = _finite_or_none if values.dtype.kind == "f" else list
        return lambda idx: safe(values[idx].tolist())
    arrow = values.__arrow_array__() if hasattr(values, "__arrow_array__") else None
    kind = None if arrow is None else ("f" if pa.types.is_floating(arrow.type) else
                                       "s" if (pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type)
                                               or pa.types.is_integer(arrow.type) or pa.types.is_boolean(arrow.type))
                                       else None)
    if kind is None:
        return lambda idx: [json_safe(values[int(i)]) for i in idx]
    safe = _finite_or_none if kind == "f" else list     # Arrow text, whole numbers, booleans: JSON-safe as read
    chunks = arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]
    starts = np.cumsum([0] + [len(c) for c in chunks])

    def fetch(idx: np.ndarray) -> list:
        if len(chunks) == 1:
            return safe(chunks[0].take(idx).to_pylist())
        which = np.searchsorted(starts, idx, side="right") - 1
        out: list = [None] * len(idx)
        for c in np.unique(which).tolist():
            at = np.flatnonzero(which == c)
            for j, v in zip(at.tolist(), safe(chunks[c].take(idx[at] - starts[c]).to_pylist())):
                out[j] = v
        return out
    return fetch


def _finite_or_none(values: list) -> list:
    """Python floats as json_safe gives them: NaN and infinities (and missing values) become None."""
    return [v if v is not None and math.isfinite(v) else None for v in values]


def _id_ranks(ids: Any) -> np.ndarray:
    """Rank of each id in string order (ties in distance are broken by id), without a str per row."""
    import pyarrow as pa
    import pyarrow.compute as pc
    order = pc.sort_indices(pa.array(ids, type=pa.string())).to_numpy()
    ranks = np.empty(len(order), dtype=np.int32 if len(order) < 2**31 else np.int64)   # 4 bytes a row
    ranks[order] = np.arange(len(order))
    return ranks


class LayerIndex:
    """A spatial index over one point layer: a bucket grid (layers.grid) over its EPSG:4547 metres, and its
    columns as stored (Arrow strings), so a row costs its numbers and its text, not Python objects.

    ``table`` has ``id`` and ``name`` (+ the layer's other columns); ``lon``/``lat`` are WGS84 (taken from
    the table's geometry when it is a GeoDataFrame), ``x_m``/``y_m`` the same points in EPSG:4547."""

    def __init__(self, table, x_m, y_m, *, lon=None, lat=None, name: str = "layer") -> None:
        x = np.asarray(x_m, dtype=float)
        y = np.asarray(y_m, dtype=float)
        if len(x) != len(table) or len(y) != len(table):
            raise LayerError(f"layer {name}: x_m/y_m have {len(x)}/{len(y)} values for {len(table)} rows")
        if len(table) and not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise LayerError(f"layer {name}: some EPSG:4547 coordinates are not finite")
        for col in ("id", "name"):
            if col not in table.columns:
                raise LayerError(f"layer {name}: column {col!r} is missing")
        geometry = getattr(table, "_geometry_column_name", None)
        if lon is None or lat is None:
            geom = table.geometry
            lon = geom.x.to_numpy(dtype=float) if len(table) else np.empty(0)
            lat = geom.y.to_numpy(dtype=float) if len(table) else np.empty(0)
        self.name = name
        self.x_m, self.y_m = x, y
        self._lon, self._lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        self.grid = PointGrid(x, y)
        ids = table["id"]
        self._ids = _column(ids if ids.dtype == object or "string" in str(ids.dtype) else ids.astype(str))
        self._id_rank = _id_ranks(self._ids) if len(x) else np.empty(0, dtype=np.int32)
        self._names = _column(table["name"])
        extra = [c for c in table.columns if c != geometry and c not in _RESERVED]
        self._extra = {c: _column(table[c]) for c in extra}
        self._fetch = [(c, _fetcher(v)) for c, v in (("id", self._ids), ("name", self._names),
                                                      *self._extra.items())]

    @classmethod
    def for_layer(cls, layer) -> LayerIndex:
        """The index of a catalog Layer (its table, WGS84 lon/lat and EPSG:4547 x/y), or of anything with a
        WGS84 point ``gdf`` and its ``x_m``/``y_m``."""
        name = getattr(layer, "name", "layer")
        if getattr(layer, "table", None) is None:
            return cls(layer.gdf, layer.x_m, layer.y_m, name=name)
        return cls(layer.table, layer.x_m, layer.y_m, lon=layer.lon, lat=layer.lat, name=name)

    def __len__(self) -> int:
        return len(self.x_m)

    # -- queries -------------------------------------------------------------------------------
    def nearest(self, point: Point, *, k: int = 5, radius_m: float | None = None) -> list[dict]:
        """The k nearest features (fewer when the layer or the radius holds fewer)."""
        k = _check_k(k)
        radius = _check_radius(radius_m, required=False)
        if len(self) == 0:
            return []
        x, y = metric_xy(point)
        idx = self.grid.nearest_candidates(x, y, k, radius)
        return self._records(idx, x, y, limit=k, radius=radius)

    def within(self, point: Point, radius_m: float) -> list[dict]:
        """Every feature at most radius_m metres away, nearest first."""
        radius = _check_radius(radius_m, required=True)
        if len(self) == 0:
            return []
        x, y = metric_xy(point)
        return self._records(self.grid.within(x, y, radius), x, y, limit=None, radius=radius)

    def nearest_each(self, lon, lat, *, radius_m: float) -> list[dict | None]:
        """For each WGS84 point (arrays ``lon``, ``lat``), what ``nearest(Point(lon, lat), k=1,
        radius_m=radius_m)`` answers (its one record, or None): one grid pass for all of them."""
        radius = _check_radius(radius_m, required=True)
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        out: list[dict | None] = [None] * len(lon)
        if len(self) == 0 or not len(lon):
            return out
        xs, ys = metric_xy_many(lon, lat)
        q, idx = self.grid.nearest_one_each(xs, ys, radius)
        d = np.hypot(self.x_m[idx] - xs[q], self.y_m[idx] - ys[q])
        keep = d <= radius
        q, idx, d = q[keep], idx[keep], d[keep]
        order = np.lexsort((self._id_rank[idx], d, q))          # per query: by distance, ties by id
        first = order[np.r_[True, q[order][1:] != q[order][:-1]]] if len(order) else order
        for j, rec in zip(first.tolist(), self._rows(idx[first], d[first])):
            out[int(q[j])] = rec
        return out

    # -- internals -----------------------------------------------------------------------------
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
        return self._rows(idx[order], d[order])

    def _rows(self, idx: np.ndarray, dist: np.ndarray) -> list[dict]:
        """The records of rows ``idx`` at distances ``dist`` (metres), each column read once for all rows."""
        cols = [(c, fetch(idx)) for c, fetch in self._fetch]
        lon, lat = self._lon[idx].tolist(), self._lat[idx].tolist()
        out = []
        for j, m in enumerate(dist.tolist()):
            rec = {"id": cols[0][1][j], "name": cols[1][1][j], "lon": lon[j], "lat": lat[j],
                   "distance_m": round(m, 1)}
            for c, values in cols[2:]:
                rec[c] = values[j]
            out.append(rec)
        return out


# -- by layer name (catalog): in PostGIS when the catalogue's database holds the layer, else in memory ---------
NAMES_TTL_S = 2.0      # a layer another process imports into PostGIS is queried there within this long
PROBE_TIMEOUT_S = 5.0  # connecting to ask which layers the database holds
MAX_DATABASES = 8      # PostGIS databases remembered per process (each is one small pool)
_clock = time.monotonic   # seconds, for NAMES_TTL_S (tests move it)
_CACHE: dict[tuple[object, str], tuple[object, LayerIndex]] = {}
_LOCK = threading.Lock()


class _Database:
    """What this process knows of one database's PostGIS layers: one ``PostgisLayers`` (a small pool, opened
    without creating anything there), the names its registry ``yzt_layers`` listed when last asked (at most
    NAMES_TTL_S ago; a failure to ask is remembered as long, so a dead server costs one timeout per TTL, not
    one per query) and one ``PostgisLayerIndex`` per layer. Thread-safe."""

    def __init__(self, url: str) -> None:
        self.url, self.lock = url, threading.Lock()
        self.db = None
        self.names: frozenset[str] = frozenset()
        self.asked = -math.inf
        self.failure: str | None = None
        self.indexes: dict[str, object] = {}

    def index(self, layer: str):
        """The PostgisLayerIndex of ``layer`` when the registry lists it, else None; LayerError when the
        database cannot be asked."""
        with self.lock:
            now = _clock()
            if now - self.asked >= NAMES_TTL_S:
                self._ask(now)
            if self.failure is not None:
                raise LayerError(self.failure)
            if layer not in self.names:
                return None
            ix = self.indexes.get(layer)
            if ix is None:
                try:
                    ix = self.indexes[layer] = self.db.index(layer)
                except UnknownLayerError:        # dropped since the names were read
                    self.names = self.names - {layer}
                    return None
                except self.db.errors.Error as e:  # e.g. no right to read yzt_layers: one line
                    raise LayerError(f"layer {layer}: cannot read its PostGIS registry row at "
                                     f"{self.db.where} ({_first_line(e)})") from None
            return ix

    def _ask(self, now: float) -> None:
        import psycopg
        from layers.postgis import open_layers, redact
        try:
            if self.db is None:
                self.db = open_layers(self.url, create_extension=False, timeout_s=PROBE_TIMEOUT_S)
            self.names, self.failure = frozenset(self.db.names()), None
        except (LayerError, psycopg.Error) as e:   # e.g. no right to read yzt_layers: one line
            self.failure = f"cannot ask {redact(self.url)} which layers are in PostGIS ({_first_line(e)})"
        self.indexes = {n: ix for n, ix in self.indexes.items() if n in self.names}
        self.asked = now

    def forget(self, layer: str) -> None:
        with self.lock:
            self.names = self.names - {layer}
            self.indexes.pop(layer, None)

    def close(self) -> None:
        with self.lock:
            if self.db is not None:
                self.db.close()
            self.db, self.indexes, self.asked = None, {}, -math.inf


_DATABASES: dict[str, _Database] = {}


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _database(url: str) -> _Database:
    with _LOCK:
        entry = _DATABASES.get(url)
        if entry is None:
            if len(_DATABASES) >= MAX_DATABASES:       # the oldest goes (its pool is closed)
                _DATABASES.pop(next(iter(_DATABASES))).close()
            entry = _DATABASES[url] = _Database(url)
        return entry


def close_postgis(url: str | None = None) -> None:
    """Close the pool of ``url`` (or of every database) and forget what was read from it."""
    with _LOCK:
        if url is None:
            entries = list(_DATABASES.values())
            _DATABASES.clear()
        else:
            entries = [e for e in (_DATABASES.pop(url, None),) if e is not None]
    for entry in entries:
        entry.close()


atexit.register(close_postgis)


class PostgisRouted:
    """The index of a layer the catalogue's PostGIS database holds (``nearest``, ``within``, ``len``, ``name``
    as LayerIndex): answered by PostGIS; should the registry list it no more (dropped between the check and
    the query), by the in-memory index of the catalogue's own file, as before it was imported."""

    def __init__(self, entry: _Database, postgis_index, catalog) -> None:
        self.entry, self.postgis, self.catalog = entry, postgis_index, catalog
        self.name = postgis_index.name

    def __len__(self) -> int:
        return len(self.postgis)

    def nearest(self, point: Point, *, k: int = 5, radius_m: float | None = None) -> list[dict]:
        return self._ask("nearest", point, k=k, radius_m=radius_m)

    def within(self, point: Point, radius_m: float) -> list[dict]:
        return self._ask("within", point, radius_m)

    def nearest_each(self, lon, lat, *, radius_m: float) -> list[dict | None]:
        """As LayerIndex.nearest_each: one PostGIS nearest(k=1) query a point."""
        return [next(iter(self.nearest(Point(float(a), float(b), "wgs84"), k=1, radius_m=radius_m)), None)
                for a, b in zip(lon, lat)]

    def _ask(self, how: str, *args, **kwargs) -> list[dict]:
        try:
            return getattr(self.postgis, how)(*args, **kwargs)
        except UnknownLayerError:
            self.entry.forget(self.name)
            return getattr(_memory_index(self.name, self.catalog), how)(*args, **kwargs)


def index_for(layer: str, catalog=None) -> LayerIndex | PostgisRouted:
    """The index answering for a catalogue layer: PostGIS when ``catalog.postgis_url`` is set and that
    database's registry lists the layer (asked at most every NAMES_TTL_S; each PostGIS query checks the
    registry again in the same statement, so a re-import is never answered stale), else the in-memory index,
    built on first use and rebuilt when the catalogue reloads the layer."""
    from layers.catalog import BUNDLED

    catalog = catalog or BUNDLED
    url = getattr(catalog, "postgis_url", None)
    if url:
        entry = _database(url)
        pg = entry.index(layer)
        if pg is not None:
            return PostgisRouted(entry, pg, catalog)
    return _memory_index(layer, catalog)


def _memory_index(layer: str, catalog) -> LayerIndex:
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
