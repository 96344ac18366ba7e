"""layers.population: census 2020 district totals spread over district land, checked by hand."""
from __future__ import annotations

import math

import geopandas as gpd
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import box

from incidents import admin
from incidents.model import Point
from layers.errors import LayerError
from layers.population import METHOD, admin_units_within, circle_wgs84, population_within

GUANGDONG_2020 = 126_012_510
TIANHE = Point(113.36308542687716, 23.173752)        # inside 天河区, > 1 km from its edge
FUTIAN_LUOHU = Point(114.09330549284233, 22.567988)  # on the 福田区 / 罗湖区 boundary


def _district(adcode: str):
    d = admin.districts()
    return d[d["district_adcode"] == adcode].iloc[0]


def _metric(geom):
    return gpd.GeoSeries([geom], crs="EPSG:4326").to_crs(admin.METRIC).iloc[0]


def test_circle_inside_one_district_is_its_density_times_the_circle():
    tianhe = _district("440106")
    area = circle_wgs84(TIANHE, 1000)
    assert _metric(tianhe.geometry).contains(_metric(area))
    est = population_within(area)
    # by hand: 2,241,826 people over 137.21 km^2, times pi * 1 km^2 -> about 51,330
    expected = tianhe.population * math.pi * 1.0 / tianhe.area_km2
    assert est.total == pytest.approx(expected, rel=0.002)
    assert 51_000 < est.total < 51_700
    assert [u["adcode"] for u in est.units] == ["440106"]
    assert est.units[0] == {"adcode": "440106", "name": "天河区", "city": "广州市",
                            "population": est.total, "share": pytest.approx(math.pi / tianhe.area_km2, rel=0.002)}
    assert est.method == METHOD


def test_circle_across_two_districts_counts_both_like_an_overlay():
    area = circle_wgs84(FUTIAN_LUOHU, 1500)
    est = population_within(area)
    assert {u["adcode"] for u in est.units} == {"440303", "440304"}
    # brute force: geopandas overlay of the circle on every district, in EPSG:4547
    d = admin.districts().to_crs(admin.METRIC)
    circ = gpd.GeoDataFrame(geometry=[_metric(area)], crs=admin.METRIC)
    parts = gpd.overlay(d, circ, how="intersection")
    want = {r.district_adcode: r.population * (r.geometry.area / 1e6) / r.area_km2 for r in parts.itertuples()}
    for u in est.units:
        assert u["population"] == pytest.approx(want[u["adcode"]], abs=1)
    assert est.total == sum(u["population"] for u in est.units)
    assert [u["population"] for u in est.units] == sorted((u["population"] for u in est.units), reverse=True)


def test_a_polygon_over_all_guangdong_gives_the_census_total():
    est = population_within(box(108.5, 19.5, 118.0, 26.5))
    assert est.total == pytest.approx(GUANGDONG_2020, rel=0.01)
    assert len(est.units) == 125
    assert all(u["share"] == pytest.approx(1.0, abs=1e-6) for u in est.units)
    macau_campus = next(u for u in est.units if u["adcode"] == "440499")
    assert macau_campus["population"] == 0
    assert any("440499" in n for n in est.notes)


def test_sea_adds_nobody():
    # 5 km circle centred in the sea off 大鹏半岛 (Shenzhen): the point is not in Guangdong
    assert not admin.in_guangdong(114.60, 22.45)
    coast = circle_wgs84(Point(114.60, 22.45), 5000)
    est = population_within(coast)
    land_m2 = sum(u["share"] * _district(u["adcode"]).area_km2 * 1e6 for u in est.units)
    circle_m2 = _metric(coast).area
    assert 0 < land_m2 < 0.3 * circle_m2
    # the same circle on 大鹏's land holds more people than the one mostly at sea
    inland = population_within(circle_wgs84(Point(114.52, 22.52), 5000))
    assert 0 < est.total < inland.total
    land = _metric(coast).intersection(_metric(admin.province().geometry.union_all())).area
    assert land_m2 == pytest.approx(land, rel=0.01)
    # open sea: nobody, no unit
    far = population_within(circle_wgs84(Point(115.0, 21.0), 10_000))
    assert far.total == 0 and far.units == []


def test_circle_is_metric_around_the_point():
    centre = Point(113.0, 22.0)
    circle = circle_wgs84(centre, 2500)
    assert _metric(circle).area == pytest.approx(math.pi * 2500 ** 2, rel=0.001)
    geod = Geod(ellps="GRS80")
    lons, lats = circle.exterior.coords.xy
    for lon, lat in zip(lons, lats):
        assert geod.inv(centre.lon, centre.lat, lon, lat)[2] == pytest.approx(2500, rel=0.005)


def test_multipolygon_and_admin_units():
    area = shapely.MultiPolygon([circle_wgs84(TIANHE, 800), circle_wgs84(FUTIAN_LUOHU, 800)])
    units = admin_units_within(area)
    assert {u["adcode"] for u in units} == {"440106", "440303", "440304"}
    assert all(set(u) == {"adcode", "name", "city", "share"} for u in units)


def test_empty_area_is_nobody():
    assert population_within(shapely.Polygon()).total == 0


@pytest.mark.parametrize("area, words", [
    (shapely.Point(114, 22.5), "circle_wgs84"),
    ("114,22", "shapely polygon"),
    (box(400000, 2400000, 410000, 2410000), "not WGS84"),
])
def test_bad_areas_are_refused_in_one_line(area, words):
    with pytest.raises(LayerError) as err:
        population_within(area)
    assert words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("radius", [0, -1, float("inf"), 5_000_000, True])
def test_bad_circle_radius_is_refused(radius):
    with pytest.raises(LayerError, match="radius_m"):
        circle_wgs84(TIANHE, radius)
