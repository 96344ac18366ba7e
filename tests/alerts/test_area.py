"""The warned area: radius rules, the officer's radius or polygon, clipping to Guangdong's land, refusals."""
from __future__ import annotations

import datetime as dt
import math

import pytest
from lxml import etree
from shapely.geometry import Point as ShapelyPoint
from shapely.geometry import Polygon

from command.alerts import area
from command.alerts.area import build_area, warning_radius_m
from command.errors import AlertError
from incidents import admin
from incidents.model import LEVELS, Casualties, Point
from layers.index import wgs84_to_metric
from layers.population import circle_wgs84, population_within

TIANHE = Point(113.3186, 23.1391)
DAMEISHA = Point(114.3080, 22.5940)      # 盐田区 大梅沙: half of a 5 km circle is sea
CAP = {"c": "urn:oasis:names:tc:emergency:cap:1.2"}


def cap_info(area, adcode: str, type: str, deaths: int):
    """The zh-CN <info> of a validated CAP Exercise for ``area`` (what a receiver reads), and the XML."""
    from command.alerts import cap
    from incidents.grading import grade
    now = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    xml = cap.build_alert(identifier=cap.new_identifier(adcode, now, lambda i: False), sender="yzt@gd.gov.cn",
                          sent=now, status="Exercise", msg_type="Alert", references=[], incident_type=type,
                          grade=grade(type, Casualties(deaths=deaths)), area=area, instruction_zh="撤离",
                          instruction_en="Leave")
    return etree.fromstring(xml.encode()).find("c:info", CAP), xml


def test_gas_explosion_radii_and_reason():
    got = [warning_radius_m("gas_explosion", lv)[0] for lv in ("IV", "III", "II", "I")]
    assert got == [300, 800, 1500, 3000]
    r, why = warning_radius_m("gas_explosion", "III")
    assert "800 m" in why and "ERG" in why
    r, why = warning_radius_m("hazmat_leak", "II")
    assert r > warning_radius_m("gas_explosion", "II")[0] and "下风向" in why
    assert warning_radius_m("fire", "IV")[0] < warning_radius_m("gas_explosion", "IV")[0]
    assert warning_radius_m("flood", "II")[0] is None
    r, why = warning_radius_m("something_new", "IV")
    assert r == 300 and "no rule" in why
    with pytest.raises(AlertError, match="level"):
        warning_radius_m("fire", "V")


def test_every_circle_rule_grows_with_the_level_and_stays_under_the_cap():
    rs = area.rules()
    for key, rule in [*rs.types.items(), ("default", rs.default)]:
        if rule.area == "circle":
            radii = [rule.radius_m[lv] for lv in LEVELS]        # IV .. I
            assert radii == sorted(radii) and 0 < radii[0] and radii[-1] <= rs.max_radius_m, key


def test_default_area_around_tianhe():
    a = build_area(TIANHE, type="gas_explosion", level="III")
    assert a.circle == (23.1391, 113.3186, 0.8) and a.radius_m == 800 and a.polygon is None
    assert a.land_share == pytest.approx(1.0)
    assert [u["adcode"] for u in a.admin_units] == ["440106"]
    # 800 m in 天河区 (about 2.24 M people on 137 km2): area share of the census, so ~30k people
    # the land clip's circle is the receiver's (geodesic, circumscribed): within 0.2% of the EPSG:4547 one
    expected = population_within(area.geodesic_circle(TIANHE.lat, TIANHE.lon, 800)).total
    assert a.population == expected and 10_000 < a.population < 100_000
    assert a.population == pytest.approx(population_within(circle_wgs84(TIANHE, 800)).total, rel=2e-3)
    assert abs(wgs84_to_metric(a.geometry_wgs84).area - math.pi * 800 ** 2) / (math.pi * 800 ** 2) < 0.01


def test_officer_radius_wins():
    a = build_area(TIANHE, radius_m=1200, type="gas_explosion", level="IV")
    assert a.circle[2] == 1.2 and a.radius_m == 1200 and "officer" in a.reason
    big = build_area(TIANHE, radius_m=3000, type="gas_explosion", level="IV")
    assert big.population > a.population


def test_coastal_circle_is_clipped_to_land():
    a = build_area(DAMEISHA, radius_m=5000, type="hazmat_leak", level="II")
    full = area.geodesic_circle(DAMEISHA.lat, DAMEISHA.lon, 5000)      # the circle a receiver reads
    full_m2 = wgs84_to_metric(full).area
    land_m2 = wgs84_to_metric(a.geometry_wgs84).area
    assert land_m2 < 0.9 * full_m2 and a.land_share == pytest.approx(land_m2 / full_m2, rel=1e-4)
    assert admin.province_shape().buffer(1e-9).covers(a.geometry_wgs84)
    assert a.circle == (22.594, 114.308, 5.0)         # the requested radius is kept (texts, the map) ...
    ring = a.polygon                                   # ... and CAP is sent the land polygon alone
    assert ring[0] == ring[-1] and 4 <= len(ring) <= 101
    assert all(20 < lat < 26 and 109 < lon < 118 for lat, lon in ring)     # lat,lon order
    ring_poly = Polygon([(lon, lat) for lat, lon in ring])
    assert ring_poly.is_valid
    largest = max(getattr(a.geometry_wgs84, "geoms", [a.geometry_wgs84]), key=lambda g: g.area)
    assert ring_poly.intersection(largest).area >= 0.99 * largest.area      # covers the land it stands for
    assert "sea" in a.reason
    # people: fewer than a naive density x full circle would count for the district at the point
    row = admin.locate_point(DAMEISHA.lon, DAMEISHA.lat)
    naive = row.population / (row.area_km2 * 1e6) * full_m2
    assert 0 < a.population < naive
    assert a.population == population_within(a.geometry_wgs84).total


def test_border_circle_leaves_out_hong_kong():
    futian_border = Point(114.0660, 22.5230)         # 福田口岸, on the Shenzhen River
    a = build_area(futian_border, radius_m=3000, type="fire", level="II")
    assert a.land_share < 0.9 and all(u["adcode"].startswith("44") for u in a.admin_units)
    # what a cell-broadcast gateway reads: CAP's shapes are a union, so the message must hold no shape that
    # reaches into Hong Kong (新田, 2.6 km south of the crossing, is inside the 3 km circle)
    san_tin = ShapelyPoint(114.0700, 22.5000)
    assert not admin.province_shape().covers(san_tin)
    info, xml = cap_info(a, "440304", "fire", 12)
    assert info.find("c:area/c:circle", CAP) is None
    rings = [[tuple(map(float, p.split(","))) for p in el.text.split()]
             for el in info.iterfind("c:area/c:polygon", CAP)]
    assert rings and not any(Polygon([(lo, la) for la, lo in r]).covers(san_tin) for r in rings)
    assert "广东陆地" in xml and "Guangdong's land within 3 km" in xml


def test_officer_polygon():
    ring = [(23.13, 113.31), (23.15, 113.31), (23.15, 113.34), (23.13, 113.34), (23.13, 113.31)]
    a = build_area(TIANHE, polygon=ring, type="gas_explosion", level="III")
    assert a.circle is None and a.radius_m is None and a.polygon == ring
    assert a.population > 0 and "polygon" in a.reason
    # the same ring as a CAP string and as a shapely polygon
    text = " ".join(f"{la},{lo}" for la, lo in ring)
    assert build_area(TIANHE, polygon=text, type="fire", level="IV").population == a.population
    shp = Polygon([(lo, la) for la, lo in ring])
    assert build_area(TIANHE, polygon=shp, type="fire", level="IV").population == a.population


@pytest.mark.parametrize("polygon,match", [
    ([(23.13, 113.31), (23.15, 113.31), (23.15, 113.34), (23.13, 113.34)], "not closed"),
    ([(23.13, 113.31), (23.15, 113.34), (23.15, 113.31), (23.13, 113.34), (23.13, 113.31)], "crosses itself"),
    ([(113.31, 23.13), (113.31, 23.15), (113.34, 23.15), (113.31, 23.13)], "lon,lat"),
    ([(23.13, 113.31), (23.15, 113.31), (23.13, 113.31)], "at least 4"),
    ("23.13,113.31 23.15 113.31", "lat,lon"),
    ([(22.0, 112.0), (24.0, 112.0), (24.0, 115.0), (22.0, 115.0), (22.0, 112.0)], "50 km"),
])
def test_bad_polygons_refused(polygon, match):
    with pytest.raises(AlertError, match=match) as e:
        build_area(TIANHE, polygon=polygon, type="fire", level="IV")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("radius,match", [(0, "more than 0"), (-5, "more than 0"), (50_001, "50 km"),
                                          (float("nan"), "not a number"), ("800", "not a number"),
                                          (True, "not a number")])
def test_bad_radius_refused(radius, match):
    with pytest.raises(AlertError, match=match):
        build_area(TIANHE, radius_m=radius, type="fire", level="IV")


def test_other_refusals():
    with pytest.raises(AlertError, match="not both"):
        build_area(TIANHE, radius_m=500, polygon=[(23.1, 113.3)] * 4, type="fire", level="IV")
    with pytest.raises(AlertError, match="no land in Guangdong"):
        build_area(Point(114.5, 21.5), type="fire", level="IV")             # South China Sea
    with pytest.raises(AlertError, match="no land in Guangdong"):
        build_area(Point(110.3, 20.0), radius_m=5000, type="fire", level="IV")   # Haikou, Hainan
    with pytest.raises(AlertError, match="district"):
        build_area(Point(114.5, 21.5), type="typhoon", level="II")          # district rule at sea


def test_flood_defaults_to_the_district():
    a = build_area(TIANHE, type="flood", level="II")
    assert a.circle is None and a.radius_m is None
    assert [u["adcode"] for u in a.admin_units] == ["440106"]
    assert a.polygon[0] == a.polygon[-1] and len(a.polygon) <= 101
    assert "天河区" in a.reason
    tianhe = admin.districts().set_index("district_adcode").loc["440106", "population"]
    assert a.population == pytest.approx(tianhe, rel=0.01)
    # a district-wide warning IS its district: CAP gets the district's geocode (and its outline)
    info, _ = cap_info(a, "440106", "flood", 12)
    area, ns = info.find("c:area", CAP), CAP
    assert [g.findtext("c:value", namespaces=ns) for g in area.iterfind("c:geocode", ns)] == ["440106"]
    assert area.find("c:polygon", ns) is not None and area.find("c:circle", ns) is None


def test_as_dict_for_reports():
    d = build_area(TIANHE, type="gas_explosion", level="III").as_dict()
    assert d["area"] == {"circle": "23.13910,113.31860 0.8"} and d["admin_units"] == ["440106"]


def test_a_clipped_area_in_pieces_sends_every_piece():
    """A circle over a coast with islands (湛江, 6 land pieces): CAP's polygons together cover all the land
    whose people are counted, not only the largest piece."""
    from shapely import unary_union
    a = build_area(Point(110.45, 21.05), radius_m=15000, type="hazmat_leak", level="I")
    assert len(getattr(a.geometry_wgs84, "geoms", [a.geometry_wgs84])) > 1 and a.more_polygons
    rings = [a.polygon, *a.more_polygons]
    assert len(rings) <= area.MAX_CAP_POLYGONS and all(len(r) <= area.MAX_CAP_VERTICES for r in rings)
    cover = unary_union([Polygon([(lo, la) for la, lo in r]) for r in rings])
    assert cover.buffer(1e-6).covers(a.geometry_wgs84)
    assert a.as_dict()["area"]["more_polygons"]
    info, _ = cap_info(a, "440800", "hazmat_leak", 40)
    ns = CAP
    assert len(info.findall("c:area/c:polygon", ns)) == len(rings) and info.find("c:area/c:circle", ns) is None


@pytest.mark.parametrize("lon, lat, radius_m", [
    (113.55, 22.20, 20000),      # 珠海: coast and islands
    (117.00, 23.43, 30000),      # 南澳
    (112.80, 21.70, 25000),      # 台山
    (113.84108, 21.99413, 30000),  # 万山群岛: 51 islands, where simplifying alone left 771 m of land out
])
def test_the_cap_polygons_cover_every_bit_of_land_they_stand_for(lon, lat, radius_m):
    """As a receiver reads them (5 decimals, straight edges in lat/lon), within the size limits."""
    from shapely import unary_union
    a = build_area(Point(lon, lat), radius_m=radius_m, type="hazmat_leak", level="I")
    rings = [a.polygon, *a.more_polygons]
    assert len(rings) <= area.MAX_CAP_POLYGONS and all(4 <= len(r) <= area.MAX_CAP_VERTICES for r in rings)
    assert sum(len(r) for r in rings) <= area.MAX_CAP_TOTAL_VERTICES
    cover = unary_union([Polygon([(lo, la) for la, lo in r]) for r in rings])
    assert cover.covers(a.geometry_wgs84.buffer(-1e-7))
    assert wgs84_to_metric(cover).area < 3 * wgs84_to_metric(a.geometry_wgs84).area     # islands merge, not sea
