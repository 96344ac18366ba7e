"""layers.index: nearest/within on the real shelters agree with a brute-force distance to every row."""
from __future__ import annotations

from layers.catalog import Catalog
from settings import load_settings

import json
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings, strategies as st
from pyproj import Geod

from incidents.model import Point
from layers.errors import LayerError
from layers.index import LayerIndex, METRIC


def cat():
    """The layer catalogue of this test's settings (its own var_dir), as a door builds it."""
    return Catalog.of(load_settings())


SHELTERS = Path(__file__).resolve().parents[2] / "data/facilities/shelters_sz_gz_geocoded_2020_unnamed.csv"


def _shelter_frame() -> pd.DataFrame:
    return pd.read_csv(SHELTERS, dtype={"district_adcode": str})


def _layer(gdf: gpd.GeoDataFrame) -> SimpleNamespace:
    """A Layer-like object as layers.catalog builds it: WGS84 gdf plus EPSG:4547 x_m/y_m."""
    m = gdf.to_crs(METRIC)
    return SimpleNamespace(name="shelter", gdf=gdf, x_m=m.geometry.x.to_numpy(), y_m=m.geometry.y.to_numpy())


@pytest.fixture(scope="module")
def shelters() -> SimpleNamespace:
    df = _shelter_frame()
    gdf = gpd.GeoDataFrame(
        {"id": df["sid"], "name": "避难场所" + df["sid"], "city": df["city"],
         "district_adcode": df["district_adcode"], "quality_flag": df["quality_flag"],
         "rank": np.arange(len(df), dtype=np.int64)},
        geometry=gpd.points_from_xy(df["lon_wgs84"], df["lat_wgs84"]), crs="EPSG:4326")
    return _layer(gdf)


@pytest.fixture(scope="module")
def index(shelters) -> LayerIndex:
    return LayerIndex.for_layer(shelters)


def brute(layer, lon: float, lat: float, radius_m: float | None = None) -> list[tuple[str, float]]:
    """Every row's EPSG:4547 distance by geopandas, sorted by distance then id."""
    q = gpd.GeoSeries([shapely.Point(lon, lat)], crs="EPSG:4326").to_crs(METRIC).iloc[0]
    d = layer.gdf.to_crs(METRIC).distance(q)
    df = pd.DataFrame({"id": layer.gdf["id"].astype(str), "d": d}).sort_values(["d", "id"])
    if radius_m is not None:
        df = df[df["d"] <= radius_m]
    return list(zip(df["id"], df["d"]))


def _same(got: list[dict], want: list[tuple[str, float]]) -> None:
    assert [r["id"] for r in got] == [w[0] for w in want]
    for r, (_, d) in zip(got, want):
        assert r["distance_m"] == pytest.approx(d, abs=0.06)


# Query points over Guangdong and the Pearl River Delta where the shelters are.
lons = st.floats(109.7, 117.3, allow_nan=False)
lats = st.floats(20.3, 25.5, allow_nan=False)
delta_lons = st.floats(113.1, 114.6, allow_nan=False)
delta_lats = st.floats(22.4, 23.5, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(lon=lons, lat=lats, k=st.integers(1, 12))
def test_nearest_matches_brute_force(shelters, index, lon, lat, k):
    _same(index.nearest(Point(lon, lat), k=k), brute(shelters, lon, lat)[:k])


@settings(max_examples=60, deadline=None)
@given(lon=delta_lons, lat=delta_lats, k=st.integers(1, 40), radius=st.floats(50, 20_000))
def test_nearest_within_radius_matches_brute_force(shelters, index, lon, lat, k, radius):
    got = index.nearest(Point(lon, lat), k=k, radius_m=radius)
    _same(got, brute(shelters, lon, lat, radius)[:k])
    assert all(r["distance_m"] <= radius + 0.05 for r in got)


@settings(max_examples=40, deadline=None)
@given(lon=delta_lons, lat=delta_lats, radius=st.floats(10, 15_000))
def test_within_matches_brute_force(shelters, index, lon, lat, radius):
    _same(index.within(Point(lon, lat), radius), brute(shelters, lon, lat, radius))


def test_nearest_at_a_shelter_is_that_shelter_at_zero(index):
    df = _shelter_frame()
    row = df[df["sid"] == "sz1"].iloc[0]
    got = index.nearest(Point(float(row.lon_wgs84), float(row.lat_wgs84)), k=1)
    assert got[0]["id"] == "sz1" and got[0]["distance_m"] == 0.0


def test_k_larger_than_the_layer_returns_every_row_sorted(shelters, index):
    got = index.nearest(Point(113.3, 23.1), k=10_000)
    assert len(got) == len(shelters.gdf)
    _same(got, brute(shelters, 113.3, 23.1))


def test_radius_with_nothing_inside_returns_empty(index):
    # the middle of 韶关 mountains: no shelter of Shenzhen or Guangzhou within 5 km
    assert index.nearest(Point(113.6, 24.8), k=5, radius_m=5000) == []
    assert index.within(Point(113.6, 24.8), 5000) == []


def test_ties_are_broken_by_id(shelters):
    gdf = gpd.GeoDataFrame({"id": ["b", "c", "a", "d"], "name": ["B", "C", "A", "D"]},
                           geometry=gpd.points_from_xy([114.0, 114.0, 114.0, 114.01], [22.6] * 4),
                           crs="EPSG:4326")
    ix = LayerIndex.for_layer(_layer(gdf))
    assert [r["id"] for r in ix.nearest(Point(114.0, 22.6), k=2)] == ["a", "b"]
    assert [r["id"] for r in ix.nearest(Point(114.0, 22.6), k=4)] == ["a", "b", "c", "d"]


def test_gcj02_point_is_converted_before_the_query(index):
    pytest.importorskip("incidents.coords")  # written by the incidents engineer
    df = _shelter_frame()
    row = df[df["sid"] == "sz127"].iloc[0]
    # the CSV carries the Amap (GCJ-02) original of each shelter: querying it must find the shelter
    got = index.nearest(Point(float(row.lon_gcj02), float(row.lat_gcj02), "gcj02"), k=1)
    assert got[0]["id"] == "sz127" and got[0]["distance_m"] < 3.0
    # whereas the same numbers read as WGS84 land several hundred metres away
    raw = index.nearest(Point(float(row.lon_gcj02), float(row.lat_gcj02)), k=1)
    assert raw[0]["id"] != "sz127" or raw[0]["distance_m"] > 300


@pytest.mark.parametrize("a, b", [
    ((114.0643505, 22.5716272), (114.0754534, 22.5727761)),   # two Shenzhen shelters, ~1.1 km
    ((113.2644, 23.1291), (114.0579, 22.5431)),               # Guangzhou to Shenzhen, ~100 km
    ((110.3594, 21.2707), (110.4094, 21.1963)),               # 湛江, 3.7 degrees west of CM 114E
    ((116.6822, 23.3535), (116.7300, 23.3900)),               # 汕头, 2.7 degrees east
])
def test_distances_are_metres_close_to_geodesic(a, b):
    gdf = gpd.GeoDataFrame({"id": ["b"], "name": ["B"]}, geometry=[shapely.Point(*b)], crs="EPSG:4326")
    ix = LayerIndex.for_layer(_layer(gdf))
    _, _, geodesic = Geod(ellps="GRS80").inv(a[0], a[1], b[0], b[1])
    assert ix.nearest(Point(*a), k=1)[0]["distance_m"] == pytest.approx(geodesic, rel=0.005)


def test_records_are_json_safe_and_carry_layer_columns(index):
    got = index.nearest(Point(114.06, 22.54), k=50)
    text = json.dumps(got, allow_nan=False, ensure_ascii=False)  # no NaN, no numpy types
    assert "NaN" not in text
    first = got[0]
    assert set(first) >= {"id", "name", "lon", "lat", "distance_m", "city", "district_adcode",
                          "quality_flag", "rank"}
    assert type(first["rank"]) is int and type(first["lon"]) is float
    assert all(r["quality_flag"] is None or type(r["quality_flag"]) is str for r in got)
    assert any(r["quality_flag"] is None for r in got)
    assert [r["distance_m"] for r in got] == sorted(r["distance_m"] for r in got)


def test_empty_layer_answers_empty():
    gdf = gpd.GeoDataFrame({"id": [], "name": []}, geometry=gpd.GeoSeries([], crs="EPSG:4326"))
    ix = LayerIndex(gdf, np.empty(0), np.empty(0))
    assert ix.nearest(Point(114, 22.6)) == [] and ix.within(Point(114, 22.6), 100) == []


@pytest.mark.parametrize("kwargs, words", [
    ({"k": 0}, "k must be"), ({"k": 2.5}, "k must be"), ({"k": True}, "k must be"),
    ({"radius_m": -5}, "radius_m"), ({"radius_m": float("nan")}, "radius_m"), ({"radius_m": 0}, "radius_m"),
])
def test_bad_arguments_are_refused_in_one_line(index, kwargs, words):
    with pytest.raises(LayerError) as err:
        index.nearest(Point(114, 22.6), **kwargs)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_query_point_must_be_a_point(index):
    with pytest.raises(LayerError, match="Point"):
        index.nearest((114.0, 22.6))


def test_mismatched_coordinates_are_refused(shelters):
    with pytest.raises(LayerError, match="x_m/y_m"):
        LayerIndex(shelters.gdf, shelters.x_m[:-1], shelters.y_m)


def test_by_layer_name_uses_the_catalog_and_builds_once():
    from layers import index
    from layers.errors import UnknownLayerError

    layer = cat().load("shelter")
    p = Point(113.33, 23.14)
    assert index.index_for("shelter") is index.index_for("shelter")
    _same(index.nearest("shelter", p, k=7), brute(layer, p.lon, p.lat)[:7])
    _same(index.within("shelter", p, 4000), brute(layer, p.lon, p.lat, 4000))
    with pytest.raises(UnknownLayerError):
        index.nearest("no_such_layer", p)
