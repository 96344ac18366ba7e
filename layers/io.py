"""Import real point registries into the product, export any layer as GeoJSON.

    from layers import io
    report = io.import_layer("hospital", Path("hospitals.csv"), crs="gcj02")   # -> ImportReport
    io.import_layer("camera", Path("cams.gpkg"), id_field="编号", name_field="名称")
    io.export_layer("shelter", Path("shelter.geojson"))                        # -> rows written

Inputs: GeoJSON, GeoPackage, Shapefile (read with pyogrio via geopandas), or CSV with lon/lat
columns (also longitude/latitude, lng/lat, 经度/纬度; UTF-8 or GB18030). ``crs`` is the datum of the
coordinates: wgs84 (also CGCS2000), gcj02 (Amap, Tencent) or bd09 (Baidu); a row may override it in
a crs/datum/坐标系 column. A vector file that declares a projected CRS is reprojected to WGS84.

Policy: all or nothing. If any row is refused (see ``layers._validate``), nothing is written and
ImportRefused lists the refused rows by number with the reason ("row 7: lon 120.5 lat 30.2 is outside
Guangdong"). ``dry_run=True`` returns the same findings in the report without writing or raising.
An accepted file is written atomically (temp file + os.replace) to ``settings.var_dir/layers/NAME.csv``
and replaces the shipped layer of that name (see ``layers.catalog``). An import keeps the synthetic
flag of a file exported from a synthetic layer: a re-imported demo layer never becomes "real".
"""
from __future__ import annotations

import datetime as dt
import io as _io
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from incidents import admin
from incidents.model import DATUMS
from layers import _validate as v
from layers.catalog import BUNDLED, REGISTRY_MAGIC, Catalog
from layers.errors import ImportRefused

VECTOR_SUFFIXES = {".geojson", ".json", ".gpkg", ".shp", ".zip"}
TRUE_TEXT = {"true", "1", "yes", "y", "是"}
# Columns other modules read from a layer of that name: an import without them gets them empty.
EXPECTED_COLUMNS = {"camera": ("heading_deg", "fov_deg", "on_road", "stream_url", "kind"),
                    "hospital": ("grade", "beds"), "fire_station": ("city", "kind"), "shelter": ("city",)}


@dataclass
class ImportReport:
    layer: str
    rows_accepted: int
    refused: list[tuple[int, str]] = field(default_factory=list)
    path: Path | None = None          # the registry written (None on a dry run or a refusal)
    synthetic: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-ready (the ``yzt layers import --json`` shape)."""
        return {"layer": self.layer, "rows_accepted": self.rows_accepted,
                "refused": [{"row": n, "reason": why} for n, why in self.refused],
                "path": str(self.path) if self.path else None, "synthetic": self.synthetic,
                "notes": list(self.notes)}


@dataclass
class _Table:
    """A file read into rows: text properties plus per-row coordinates and geometry type."""

    props: pd.DataFrame
    lon: list
    lat: list
    geom_type: list
    notes: list[str]
    coord_fields: tuple[str, ...] = ()


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_csv(path: Path, source: str) -> _Table:
    df = None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
            break
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            raise ImportRefused(f"{source}: not a readable CSV ({str(e).splitlines()[0]})") from None
    if df is None:
        raise ImportRefused(f"{source}: not UTF-8 or GB18030 text")
    df.columns = [c.strip() for c in df.columns]
    lon_f, lat_f = v.find_coordinate_fields(list(df.columns), source)
    return _Table(df, df[lon_f].tolist(), df[lat_f].tolist(), ["Point"] * len(df), [], (lon_f, lat_f))


def _file_crs(gdf, datum: str, source: str):
    """Reproject a declared non-geographic CRS to WGS84; returns (gdf, notes)."""
    if gdf.crs is None:
        return gdf, [f"{source} declares no CRS: coordinates taken as {datum}"]
    epsg = gdf.crs.to_epsg()
    if epsg == 4326 or gdf.crs.equals("OGC:CRS84"):
        return gdf, []
    if epsg == 4490:
        return gdf, [f"{source} is in CGCS2000 (EPSG:4490), used as WGS84 (they agree within centimetres)"]
    if datum != "wgs84":
        raise ImportRefused(f"{source} declares {gdf.crs.name}; its coordinates cannot also be {datum}: "
                            "import it without a crs option")
    return gdf.to_crs(4326), [f"{source}: reprojected from {gdf.crs.name} (EPSG:{epsg}) to WGS84"]


def _read_vector(path: Path, datum: str, source: str) -> _Table:
    import geopandas as gpd
    try:
        gdf = gpd.read_file(path, engine="pyogrio")
    except Exception as e:  # pyogrio raises its own DataSourceError / DataLayerError
        raise ImportRefused(f"{source}: cannot read as a GIS file ({str(e).splitlines()[0]})") from None
    gdf, notes = _file_crs(gdf, datum, source)
    geoms = gdf.geometry.to_numpy() if gdf.geometry.name in gdf else np.array([None] * len(gdf))
    kinds = [None if g is None or g.is_empty else g.geom_type for g in geoms]
    pts = [g if k == "Point" else None for g, k in zip(geoms, kinds)]
    lon = [float(shapely.get_x(g)) if g is not None else None for g in pts]
    lat = [float(shapely.get_y(g)) if g is not None else None for g in pts]
    props = pd.DataFrame({c: [_text(x) for x in gdf[c]] for c in gdf.columns if c != gdf.geometry.name})
    return _Table(props, lon, lat, kinds, notes)


def _read(path: Path, datum: str) -> _Table:
    source = path.name
    if not path.is_file():
        raise ImportRefused(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return _read_csv(path, source)
    if suffix in VECTOR_SUFFIXES:
        return _read_vector(path, datum, source)
    raise ImportRefused(f"{source}: unsupported file type {suffix or '(none)'}; use .csv, .geojson, .gpkg or .shp")


def _column(props: pd.DataFrame, candidates: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in props.columns}
    return next((lower[c] for c in candidates if c in lower), None)


def _district_codes(lon: np.ndarray, lat: np.ndarray) -> list[str]:
    """The adcode of the smallest district polygon covering each WGS84 point ('' if none)."""
    gdf = admin.districts()
    src, tree = gdf.sindex.query(shapely.points(lon, lat), predicate="within")
    pairs = pd.DataFrame({"i": src, "area": gdf["area_km2"].to_numpy()[tree],
                          "code": gdf["district_adcode"].to_numpy()[tree]}).sort_values(["i", "area"])
    first = pairs.drop_duplicates("i").set_index("i")["code"]
    return [first.get(i, "") for i in range(len(lon))]


def _registry_frame(table: _Table, id_f: str, name_f: str, lon: np.ndarray, lat: np.ndarray) -> pd.DataFrame:
    props = table.props
    skip = {id_f, name_f, *table.coord_fields, "district_adcode", "geometry"}
    skip |= {c for c in props.columns if c.lower() in (*v.DATUM_FIELDS, "synthetic")}
    out = pd.DataFrame({"id": props[id_f].str.strip(), "name": props[name_f].str.strip(),
                        "lon": [f"{x:.7f}" for x in lon], "lat": [f"{y:.7f}" for y in lat],
                        "district_adcode": _district_codes(lon, lat)})
    for c in props.columns:
        if c not in skip and c not in out:
            out[c] = props[c].to_numpy()
    return out


def _with_expected(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    for c in EXPECTED_COLUMNS.get(name, ()):
        if c not in frame:
            frame[c] = ""
    return frame


def _write_registry(name: str, frame: pd.DataFrame, meta: dict, catalog: Catalog) -> Path:
    target = catalog.imported_path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    buf = _io.StringIO()
    buf.write(REGISTRY_MAGIC + json.dumps(meta, ensure_ascii=False) + "\n")
    frame.to_csv(buf, index=False, lineterminator="\n")
    _atomic_write(target, buf.getvalue().encode("utf-8"))
    return target


def _atomic_write(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def import_layer(name: str, path: Path | str, *, crs: str = "wgs84", id_field: str | None = None,
                 name_field: str | None = None, dry_run: bool = False, catalog: Catalog = BUNDLED) -> ImportReport:
    """Validate ``path`` and store it as the registry of layer ``name`` (all rows, or nothing)."""
    v.check_layer_name(name)
    path = Path(path)
    datum = v.normalise_datum(crs or "")
    if datum not in DATUMS:
        raise ImportRefused(f"crs {crs!r} refused: give the datum of the coordinates (wgs84, gcj02 or bd09)")
    table = _read(path, datum)
    if table.props.empty and not table.lon:
        raise ImportRefused(f"{path.name}: no rows to import")
    cols = list(table.props.columns)
    id_f = v.find_field(cols, id_field, v.ID_FIELDS, "id", path.name)
    name_f = v.find_field(cols, name_field, v.NAME_FIELDS, "name", path.name)
    datum_f = _column(table.props, v.DATUM_FIELDS)
    numeric = [c for c in v.FIELD_RANGES if c in table.props.columns]
    rows = [v.RawRow(number=i + 1, id=str(r[id_f]), name=str(r[name_f]), lon=table.lon[i], lat=table.lat[i],
                     geom_type=table.geom_type[i], datum=str(r[datum_f]) if datum_f else "",
                     numbers={c: r[c] for c in numeric})
            for i, r in enumerate(table.props.to_dict("records"))]
    lon, lat, refused = v.check_rows(rows, default_datum=datum)
    synth_f = _column(table.props, ("synthetic",))
    synthetic = synth_f is not None and bool(table.props[synth_f].str.strip().str.lower().isin(TRUE_TEXT).any())
    notes = list(table.notes)
    if synthetic:
        notes.append(f"{path.name} holds synthetic rows (exported from a demo layer): kept marked synthetic")
    report = ImportReport(name, 0 if refused else len(rows), refused, None, synthetic, notes)
    if refused and not dry_run:
        raise ImportRefused(v.refusal_message(name, path.name, len(rows), refused), refused)
    if dry_run:
        return report
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    frame = _with_expected(name, _registry_frame(table, id_f, name_f, lon, lat))
    meta = {"layer": name, "synthetic": synthetic, "rows": len(rows), "crs": "wgs84",
            "numeric": [c for c in v.FIELD_RANGES if c in frame.columns],
            "source": f"{path.name} (imported {now.date().isoformat()})",
            "licence": "as supplied by the importer", "input_datum": datum, "imported_at": now.isoformat(),
            "description": f"imported registry {path.name}", "notes": notes}
    report.path = _write_registry(name, frame, meta, catalog)
    return report


def _json_value(value: object) -> object:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def export_layer(name: str, path: Path | str, *, catalog: Catalog = BUNDLED) -> int:
    """Write layer ``name`` as a GeoJSON FeatureCollection (WGS84); returns the number of features.
    Every feature carries ``synthetic``; the foreign member ``yzt`` holds layer, synthetic, source, licence."""
    layer = catalog.load(name)
    gdf = layer.gdf
    cols = [c for c in gdf.columns if c != gdf.geometry.name]
    lon, lat = shapely.get_x(gdf.geometry.to_numpy()), shapely.get_y(gdf.geometry.to_numpy())
    features = []
    for rec, x, y in zip(gdf[cols].to_dict("records"), lon, lat):
        props = {k: _json_value(val) for k, val in rec.items()}
        props["synthetic"] = layer.synthetic
        features.append({"type": "Feature", "properties": props,
                         "geometry": {"type": "Point", "coordinates": [round(float(x), 7), round(float(y), 7)]}})
    doc = {"type": "FeatureCollection", "name": name,
           "yzt": {"layer": name, "synthetic": layer.synthetic, "source": layer.source,
                   "licence": layer.licence, "crs": "wgs84", "rows": len(features)},
           "features": features}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, json.dumps(doc, ensure_ascii=False).encode("utf-8"))
    return len(features)
