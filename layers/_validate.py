"""Validation of imported registry rows, in one place (used by ``layers.io``).

    names = find_field(columns, explicit, ID_FIELDS, "id", source)    # file-level: raises ImportRefused
    lon, lat, refused = check_rows(rows, default_datum="gcj02")        # row-level: [(row_number, reason)]

Row numbers count data rows from 1 (a CSV's header is not a row; a GeoJSON's first feature is row 1).
A row is refused when: its geometry is not a single point, a coordinate is missing or not finite,
its datum is unknown, it lies outside Guangdong once in WGS84, its id is empty or repeats an earlier
row, its name is empty, or a known numeric field (heading_deg, fov_deg, beds) is not a number in range.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import shapely

from incidents import admin
from layers.errors import ImportRefused

LAYER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
ID_FIELDS = ("id", "编号", "code", "sid")
NAME_FIELDS = ("name", "名称", "名字", "title")
COORD_FIELDS = (("lon", "lat"), ("longitude", "latitude"), ("lng", "lat"), ("经度", "纬度"))
DATUM_FIELDS = ("crs", "datum", "坐标系")
FIELD_RANGES = {"heading_deg": (0.0, 360.0), "fov_deg": (1.0, 360.0), "beds": (0.0, 100_000.0)}
DATUM_ALIASES = {
    "wgs84": "wgs84", "wgs-84": "wgs84", "wgs 84": "wgs84", "epsg:4326": "wgs84", "4326": "wgs84",
    "cgcs2000": "wgs84", "epsg:4490": "wgs84", "gps": "wgs84",
    "gcj02": "gcj02", "gcj-02": "gcj02", "gcj": "gcj02", "amap": "gcj02", "高德": "gcj02", "火星": "gcj02",
    "bd09": "bd09", "bd-09": "bd09", "bd09ll": "bd09", "baidu": "bd09", "百度": "bd09",
}


@dataclass
class RawRow:
    """One row as read from a file, before validation."""

    number: int
    id: str
    name: str
    lon: object                 # as read: str from CSV, float from a vector file, None if absent
    lat: object
    geom_type: str | None = "Point"   # None when the row has no geometry
    datum: str = ""             # the row's own datum cell, '' when none
    numbers: dict[str, str] = field(default_factory=dict)


def check_layer_name(name: str) -> str:
    if not isinstance(name, str) or not LAYER_NAME.match(name):
        raise ImportRefused(f"layer name {name!r} refused: use lower-case letters, digits and _ "
                            "(e.g. hospital, fire_station, camera, shelter)")
    return name


def normalise_datum(text: str) -> str | None:
    return DATUM_ALIASES.get(str(text).strip().lower())


def find_field(columns: list[str], explicit: str | None, candidates: tuple[str, ...], what: str,
               source: str) -> str:
    """The column holding ``what`` (explicit name first, else a known name, case-insensitive)."""
    if explicit:
        if explicit in columns:
            return explicit
        raise ImportRefused(f"{source}: no column {explicit!r} for the {what}; columns are: {', '.join(columns)}")
    lower = {c.strip().lower(): c for c in columns}
    for c in candidates:
        if c in lower:
            return lower[c]
    flag = "--id-field" if what == "id" else "--name-field"
    raise ImportRefused(f"{source}: no {what} column (looked for {', '.join(candidates)}); "
                        f"name it with {flag}. Columns are: {', '.join(columns)}")


def find_coordinate_fields(columns: list[str], source: str) -> tuple[str, str]:
    lower = {c.strip().lower(): c for c in columns}
    for lon, lat in COORD_FIELDS:
        if lon in lower and lat in lower:
            return lower[lon], lower[lat]
    raise ImportRefused(f"{source}: no coordinate columns (expected lon/lat, longitude/latitude or 经度/纬度); "
                        f"columns are: {', '.join(columns)}")


def _number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return math.nan if text.lower() in {"nan", "inf", "-inf"} else None


def _fmt(v: object) -> str:
    return f"{v:.10g}" if isinstance(v, float) else repr(v)


def _coordinate_problem(row: RawRow) -> str | None:
    if row.geom_type is None:
        return "no geometry"
    if row.geom_type != "Point":
        return f"geometry is a {row.geom_type}, not a point (give one point per facility)"
    lon, lat = _number(row.lon), _number(row.lat)
    for label, raw, v in (("lon", row.lon, lon), ("lat", row.lat, lat)):
        if v is None:
            return f"{label} {raw!r} is not a number" if str(raw or "").strip() else f"{label} is empty"
        if not math.isfinite(v):
            return f"{label} {raw} is not a finite number"
    if 18 <= lon <= 27 and 108 <= lat <= 118:
        return f"lon {_fmt(lon)} lat {_fmt(lat)} look swapped (latitude given first?)"
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return f"lon {_fmt(lon)} lat {_fmt(lat)} is out of range"
    return None


def _to_wgs84(lon: float, lat: float, datum: str) -> tuple[float, float]:
    if datum == "wgs84":
        return lon, lat
    from incidents import coords  # the project's one implementation of the datum formulas
    return coords.gcj02_to_wgs84(lon, lat) if datum == "gcj02" else coords.bd09_to_wgs84(lon, lat)


def _field_problems(row: RawRow, seen: dict[str, int]) -> list[str]:
    out = []
    if not row.id.strip():
        out.append("id is empty")
    elif row.id in seen:
        out.append(f"id {row.id!r} repeats row {seen[row.id]}")
    else:
        seen[row.id] = row.number
    if not row.name.strip():
        out.append("name is empty")
    for col, text in row.numbers.items():
        if not str(text).strip():
            continue
        v, (lo, hi) = _number(text), FIELD_RANGES[col]
        if v is None or not math.isfinite(v) or not lo <= v <= hi:
            out.append(f"{col} {text!r} is not a number in {lo:g}..{hi:g}")
    return out


def check_rows(rows: list[RawRow], *, default_datum: str) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
    """WGS84 lon/lat for every row (NaN where refused) and the refused rows with their reasons."""
    n = len(rows)
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    reasons: dict[int, list[str]] = {}
    seen: dict[str, int] = {}
    described: list[str] = [""] * n
    for i, row in enumerate(rows):
        problems = _field_problems(row, seen)
        coord = _coordinate_problem(row)
        datum = normalise_datum(row.datum) if str(row.datum).strip() else default_datum
        if coord is None and datum is None:
            coord = f"datum {row.datum!r} unknown (use wgs84, gcj02 or bd09)"
        if coord is None:
            x, y = float(_number(row.lon)), float(_number(row.lat))
            lon[i], lat[i] = _to_wgs84(x, y, datum)
            described[i] = f"lon {_fmt(x)} lat {_fmt(y)}" + ("" if datum == "wgs84" else f" ({datum})")
        else:
            problems.insert(0, coord)
        if problems:
            reasons[i] = problems
    ok = ~np.isnan(lon)
    inside = np.zeros(n, dtype=bool)
    inside[ok] = shapely.contains_xy(admin.province_shape(), lon[ok], lat[ok])
    for i in np.flatnonzero(ok & ~inside):
        reasons.setdefault(int(i), []).insert(0, f"{described[i]} is outside Guangdong")
    refused = [(rows[i].number, "; ".join(r)) for i, r in sorted(reasons.items())]
    for i in reasons:
        lon[i] = lat[i] = np.nan
    return lon, lat, refused


def refusal_message(layer: str, source: str, total: int, refused: list[tuple[int, str]], *, show: int = 5) -> str:
    shown = "; ".join(f"row {n}: {why}" for n, why in refused[:show])
    more = f" (and {len(refused) - show} more)" if len(refused) > show else ""
    return (f"{layer} import from {source} refused, nothing imported: {len(refused)} of {total} rows "
            f"bad: {shown}{more}")
