"""Guangdong's admin units: province/city/district polygons (WGS84), the admin-unit table, census 2020.

Loaded lazily, once per process and data directory; nothing is read at import. The outlines (with their census
population and area) come from the persistent cache (incidents/cache.py) when an entry for the content of their
GeoJSON and census files exists; else they are read and stored for the next process. Every reader takes the data
directory as ``root``; without one it reads the bundled ``data/`` (DEFAULT_DATA_DIR). Settings are not read
here: the door that read them passes ``root`` down.

    from incidents import admin
    admin.districts()          # GeoDataFrame: district_adcode, district_name, city_adcode, city_name,
                               #   short_name, population (2020 census, NaN where the census has no row),
                               #   area_km2 (EPSG:4547), geometry (WGS84)
    admin.cities(), admin.province()
    admin.units()              # DataFrame of guangdong_admin_units.csv, adcode as str
    admin.locate_point(pt)     # (district row or None) by point in polygon
"""
from __future__ import annotations

import functools
from pathlib import Path

import geopandas as gpd
import pandas as pd
from shapely import Point as ShapelyPoint

from incidents import cache
from settings import ROOT

WGS84 = "EPSG:4326"
METRIC = "EPSG:4547"  # CGCS2000 / 3-degree Gauss-Kruger CM 114E: metres, covers Guangdong
GUANGDONG_ADCODE = "440000"

BOUNDARY_FILES = {
    "province": "boundaries/guangdong_province_amap_wgs84.geojson",
    "city": "boundaries/guangdong_city_amap_wgs84.geojson",
    "district": "boundaries/guangdong_district_amap_wgs84.geojson",
}
CENSUS_FILE = "population/guangdong_census2020_county.csv"
UNITS_FILE = "gazetteer/guangdong_admin_units.csv"
DEFAULT_DATA_DIR = ROOT / "data"   # the bundled data; a deployment's own folder is passed as ``root``


def data_dir(root: Path | None = None) -> Path:
    """``root`` when given, else the bundled data folder."""
    return Path(root) if root is not None else DEFAULT_DATA_DIR


@functools.lru_cache(maxsize=4)
def _read_boundaries(level: str, root: Path) -> gpd.GeoDataFrame:
    gdf = gpd.read_file(root / BOUNDARY_FILES[level], engine="pyogrio")
    gdf = gdf.set_crs(WGS84, allow_override=True)
    for col in ("province_adcode", "city_adcode", "district_adcode"):
        if col in gdf:
            gdf[col] = gdf[col].astype("Int64").astype(str)
    return gdf


@functools.lru_cache(maxsize=2)
def _census(root: Path) -> pd.DataFrame:
    """2020 census by adcode (province, city, county rows)."""
    df = pd.read_csv(root / CENSUS_FILE, dtype={"adcode": str})
    return df.set_index("adcode", drop=False)


@functools.lru_cache(maxsize=2)
def _districts(root: Path) -> gpd.GeoDataFrame:
    return _cached_frame("district", root, (BOUNDARY_FILES["district"], CENSUS_FILE), _build_districts)


def _build_districts(root: Path) -> gpd.GeoDataFrame:
    gdf = _read_boundaries("district", root).copy()
    pop = _census(root)["population"]
    gdf["population"] = gdf["district_adcode"].map(pop).astype(float)
    gdf["area_km2"] = gdf.to_crs(METRIC).area / 1e6
    return gdf[["district_adcode", "district_name", "short_name", "city_adcode", "city_name",
                "population", "area_km2", "geometry"]]


@functools.lru_cache(maxsize=2)
def _cities(root: Path) -> gpd.GeoDataFrame:
    return _cached_frame("city", root, (BOUNDARY_FILES["city"], CENSUS_FILE), _build_cities)


def _build_cities(root: Path) -> gpd.GeoDataFrame:
    gdf = _read_boundaries("city", root).copy()
    gdf["population"] = gdf["city_adcode"].map(_census(root)["population"]).astype(float)
    return gdf[["city_adcode", "city_name", "short_name", "population", "geometry"]]


@functools.lru_cache(maxsize=2)
def _province(root: Path) -> gpd.GeoDataFrame:
    return _cached_frame("province", root, (BOUNDARY_FILES["province"],), lambda r: _read_boundaries("province", r))


def _cached_frame(level: str, root: Path, files: tuple[str, ...], build) -> gpd.GeoDataFrame:
    """The outlines of ``level`` from the persistent cache (incidents.cache, keyed by the content of
    ``files``), else built from the GeoJSON (~0.15 s each) and stored for the next process."""
    return cache.cached(f"admin-{level}", inputs=[root / f for f in files], code=[__file__],
                        build=lambda: build(root), encode=_encode_frame, decode=_decode_frame)


def _encode_frame(gdf: gpd.GeoDataFrame) -> cache.Entry:
    import pyarrow as pa
    import shapely
    table = pa.Table.from_pandas(pd.DataFrame(gdf.drop(columns="geometry")), preserve_index=False)
    wkb = pa.table({"wkb": pa.array(shapely.to_wkb(gdf.geometry.to_numpy()), type=pa.binary())})
    return cache.Entry({"attributes": table, "geometry": wkb},
                       {"crs": gdf.crs.to_string(), "columns": list(gdf.columns)})


def _decode_frame(entry: cache.Entry) -> gpd.GeoDataFrame:
    import shapely
    df = entry.tables["attributes"].to_pandas()
    geoms = shapely.from_wkb(entry.tables["geometry"].column("wkb").to_numpy(zero_copy_only=False))
    gdf = gpd.GeoDataFrame(df, geometry=geoms, crs=entry.meta["crs"])
    return gdf[entry.meta["columns"]]


@functools.lru_cache(maxsize=2)
def _province_shape(root: Path):
    """The province outline as one shapely geometry (WGS84), prepared for fast point tests."""
    import shapely
    geom = _province(root).geometry.union_all()
    shapely.prepare(geom)
    return geom


@functools.lru_cache(maxsize=2)
def _units(root: Path) -> pd.DataFrame:
    df = pd.read_csv(root / UNITS_FILE, dtype={"adcode": str})
    df["city_adcode"] = df["city_adcode"].astype("Int64").astype(str).replace("<NA>", None)
    return df


def in_guangdong(lon: float, lat: float, *, root: Path | None = None) -> bool:
    """True when the WGS84 point lies inside Guangdong's outline."""
    return bool(_province_shape(data_dir(root)).covers(ShapelyPoint(lon, lat)))


def locate_point(lon: float, lat: float, *, root: Path | None = None) -> pd.Series | None:
    """The district row whose polygon covers the WGS84 point, or None outside Guangdong."""
    tree, areas, rows = _district_tree(data_dir(root))
    idx = tree.query(ShapelyPoint(lon, lat), predicate="covered_by")
    if len(idx) == 0:
        return None
    # 澳门大学横琴校区 (440499) lies inside 香洲区's outline: prefer the smallest unit that covers the point.
    return rows[int(idx[areas[idx].argmin()])]


@functools.lru_cache(maxsize=2)
def _district_tree(root: Path):
    """An STRtree over prepared district polygons (geopandas' sindex adds ~0.3 ms a query here), and the
    district rows already cut (``iloc`` costs more than the query). Treat the rows as read-only."""
    import shapely
    d = _districts(root)
    geoms = d.geometry.to_numpy().copy()
    shapely.prepare(geoms)
    return shapely.STRtree(geoms), d["area_km2"].to_numpy(), [d.iloc[i] for i in range(len(d))]


def census(root: Path | None = None):
    return _census(data_dir(root))


def districts(root: Path | None = None):
    return _districts(data_dir(root))


def cities(root: Path | None = None):
    return _cities(data_dir(root))


def province(root: Path | None = None):
    return _province(data_dir(root))


def province_shape(root: Path | None = None):
    return _province_shape(data_dir(root))


def units(root: Path | None = None):
    return _units(data_dir(root))
