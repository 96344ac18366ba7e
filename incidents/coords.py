"""Coordinate datums used in China: WGS84 (GPS, Tianditu), GCJ-02 (Amap, Tencent), BD-09 (Baidu).

    from incidents.coords import parse_point, to_wgs84, wgs84_to_gcj02
    p = parse_point("113.32,23.13", crs="gcj02")   # Point in its own datum (raises CoordinateError)
    w = to_wgs84(p)                                # the same place in WGS84
    lon, lat = wgs84_to_gcj02(113.32, 23.13)       # plain functions take and return (lon, lat)

WGS84 -> GCJ-02 is the published closed formula (a = 6378245.0, ee = 0.00669342162296594323); the inverse
has no closed form and is iterated until the round trip is within 1e-12 degrees (far below a millimetre).
BD-09 is GCJ-02 with Baidu's extra rotation/offset; its inverse is iterated the same way.
Points outside China's rough bounding box are not shifted (the standard ``out_of_china`` test).

Projections (pyproj) are shared: ``transformer(src, dst)`` is THE Transformer of a CRS pair in this process
(always_xy), whichever module asks; see its docstring.

    from incidents.coords import transformer
    x, y = transformer("EPSG:4326", "EPSG:4547").transform(113.32, 23.13)   # metres, as everywhere
"""
from __future__ import annotations

import functools
import math
import re
import unicodedata

from incidents.errors import CoordinateError
from incidents.model import DATUMS, Point

A = 6378245.0
EE = 0.00669342162296594323
X_PI = math.pi * 3000.0 / 180.0
BD_DLON = 0.0065
BD_DLAT = 0.006
_TOL_DEG = 1e-12
_MAX_ITER = 30

# Guangdong's rough box, used only to recognise a "lat,lon" typed the wrong way round.
_GD_BOX = (109.6, 20.2, 117.4, 25.6)


def out_of_china(lon: float, lat: float) -> bool:
    """True outside the box where Chinese datums shift points (the standard test)."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if out_of_china(lon, lat):
        return lon, lat
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((A * (1 - EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (A / sqrtmagic * math.cos(radlat) * math.pi)
    return lon + dlon, lat + dlat


def _invert(forward, lon: float, lat: float, first: tuple[float, float]) -> tuple[float, float]:
    """Solve forward(x) = (lon, lat) by fixed-point iteration from ``first`` (the Jacobian is ~identity)."""
    x, y = first
    for _ in range(_MAX_ITER):
        fx, fy = forward(x, y)
        dx, dy = fx - lon, fy - lat
        if abs(dx) < _TOL_DEG and abs(dy) < _TOL_DEG:
            break
        x, y = x - dx, y - dy
    return x, y


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    if out_of_china(lon, lat):
        return lon, lat
    return _invert(wgs84_to_gcj02, lon, lat, (lon, lat))


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    if out_of_china(lon, lat):
        return lon, lat
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * X_PI)
    return z * math.cos(theta) + BD_DLON, z * math.sin(theta) + BD_DLAT


def _bd09_to_gcj02_closed(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - BD_DLON, lat - BD_DLAT
    z = math.hypot(x, y) - 0.00002 * math.sin(y * X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * X_PI)
    return z * math.cos(theta), z * math.sin(theta)


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if out_of_china(lon, lat):
        return lon, lat
    return _invert(gcj02_to_bd09, lon, lat, _bd09_to_gcj02_closed(lon, lat))


def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


_TO_WGS = {"wgs84": lambda lon, lat: (lon, lat), "gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}
_FROM_WGS = {"wgs84": lambda lon, lat: (lon, lat), "gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09}


def shown(text: object, limit: int = 40) -> str:
    """repr() of user text for a refusal, cut to ``limit`` characters so the message stays one short line."""
    text = str(text)
    r = repr(text)
    return r if len(r) <= limit + 2 else f"{r[:limit + 1]}... ({len(text)} characters)"


def normalise_crs(crs: str) -> str:
    """'GCJ-02', 'gcj02', ' BD09 ' -> the model's datum names; unknown names are refused."""
    key = str(crs).strip().lower().replace("-", "").replace("_", "")
    if key in ("wgs84", "cgcs2000", "epsg4326"):
        key = "wgs84"
    if key not in DATUMS:
        raise CoordinateError(f"unknown datum {shown(crs)}: use one of {', '.join(DATUMS)}")
    return key


def to_wgs84(p: Point) -> Point:
    """The same place as a WGS84 Point."""
    if p.crs == "wgs84":
        return p
    return Point(*_TO_WGS[p.crs](p.lon, p.lat), crs="wgs84")


def convert(p: Point, crs: str) -> Point:
    """The same place in datum ``crs`` (wgs84, gcj02 or bd09)."""
    crs = normalise_crs(crs)
    if crs == p.crs:
        return p
    w = to_wgs84(p)
    return Point(*_FROM_WGS[crs](w.lon, w.lat), crs=crs)


_SPLIT = re.compile(r"[,;\s]+")
MAX_POINT_CHARS = 100     # "lon,lat" with every digit a double holds is far shorter


def _in_box(lon: float, lat: float, box: tuple[float, float, float, float]) -> bool:
    return box[0] <= lon <= box[2] and box[1] <= lat <= box[3]


def parse_point(text: str, crs: str = "wgs84") -> Point:
    """'113.32,23.13', '113.32 23.13', full-width '１１３．３２，２３．１３' -> Point in ``crs``.

    Longitude first. Refuses (CoordinateError, one line) anything that is not two finite numbers,
    out of range, or that looks like latitude,longitude typed the wrong way round.
    """
    crs = normalise_crs(crs)
    raw = "" if text is None else str(text)
    if len(raw) > MAX_POINT_CHARS:
        raise CoordinateError(f"point {shown(raw)}: over {MAX_POINT_CHARS} characters; "
                              "expected two numbers 'lon,lat' (longitude first)")
    norm = unicodedata.normalize("NFKC", raw).replace("、", ",").strip().strip("()[]")
    parts = [s for s in _SPLIT.split(norm) if s]
    if len(parts) != 2:
        raise CoordinateError(f"point {shown(raw)}: expected two numbers 'lon,lat' (longitude first)")
    try:
        lon, lat = float(parts[0]), float(parts[1])
    except ValueError:
        raise CoordinateError(f"point {shown(raw)}: expected two numbers 'lon,lat', "
                              f"got {shown(parts[0], 20)} and {shown(parts[1], 20)}") from None
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise CoordinateError(f"point {shown(raw)}: coordinates must be finite numbers, not NaN or infinity")
    as_given_ok = -180 <= lon <= 180 and -90 <= lat <= 90
    if _in_box(lat, lon, _GD_BOX) and not (as_given_ok and _in_box(lon, lat, _GD_BOX)):
        raise CoordinateError(f"point {shown(raw)} looks swapped (latitude first): give longitude first, "
                              f"e.g. '{lat:g},{lon:g}'")
    if not as_given_ok:
        which = f"lon {lon:g} is outside -180..180" if not -180 <= lon <= 180 else \
            f"lat {lat:g} is outside -90..90"
        raise CoordinateError(f"point {shown(raw)}: {which} (give 'lon,lat', longitude first)")
    return Point(lon, lat, crs=crs)


# ---------------------------------------------------------------------------------------------- projections
PROBES = ((113.3, 23.1), (110.1, 20.3), (117.2, 25.5), (114.0, 0.0))   # WGS84 lon/lat, checked on encode


@functools.lru_cache(maxsize=16)
def transformer(src: str, dst: str):
    """The pyproj Transformer from ``src`` to ``dst`` (always_xy), one per CRS pair and process.

    ``Transformer.from_crs`` searches PROJ's database for the operation (~40 ms a pair, four pairs in a
    drill); the operation it picks is kept in the persistent cache (incidents/cache.py) as its PROJ
    pipeline text, keyed by the pair, the PROJ version and the content of proj.db, and a fresh process makes
    the Transformer from that text (``from_pipeline``, ~0.1 ms): the same operation, the same numbers. A
    pipeline is only stored when it transforms the probe points exactly as the searched one does."""
    from pyproj import Transformer
    from incidents import cache
    return cache.cached("proj-pipeline", inputs=[], params={"src": src, "dst": dst, **_proj_identity()},
                        code=[__file__], build=lambda: Transformer.from_crs(src, dst, always_xy=True),
                        encode=functools.partial(_encode_pipeline, src=src, dst=dst), decode=_decode_pipeline)


@functools.lru_cache(maxsize=1)
def _proj_identity() -> dict[str, str]:
    """What decides PROJ's choice of operation: its version and its database's content (hashed once)."""
    import pyproj
    from pathlib import Path
    from incidents import cache
    db = Path(pyproj.datadir.get_data_dir()) / "proj.db"
    return {"proj": pyproj.proj_version_str, "proj_db": cache.file_digest(db)}


def _encode_pipeline(t, *, src: str, dst: str):
    from pyproj import Transformer
    from incidents import cache
    again = Transformer.from_pipeline(t.definition)
    probes = [Transformer.from_crs("EPSG:4326", src, always_xy=True).transform(*p) for p in PROBES] \
        if src != "EPSG:4326" else list(PROBES)
    if any(t.transform(*p) != again.transform(*p) for p in probes):
        raise ValueError(f"{src} -> {dst}: PROJ's pipeline text does not reproduce its operation")
    return cache.Entry(meta={"definition": t.definition})


def _decode_pipeline(entry):
    from pyproj import Transformer
    return Transformer.from_pipeline(entry.meta["definition"])
