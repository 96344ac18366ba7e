"""The offline map's data (command/dashboard/routes.py, mapview.py) and the call-text box (report.py)."""
from __future__ import annotations

import json

import pytest

from command.dashboard import mapview, report, routes


def test_label_points_come_from_the_gazetteer_points_only():
    towns = json.loads(routes.labels_geojson("township"))["features"]
    assert 1500 < len(towns) <= 1757                 # the 1,571 townships with a point of their own
    sha_mian = next(f for f in towns if f["properties"]["code"] == "440103001")
    assert sha_mian["properties"]["name"] == "沙面街道" and sha_mian["properties"]["u"] > 0
    assert sha_mian["geometry"]["coordinates"] == [113.242977, 23.109923]
    assert len(json.loads(routes.labels_geojson("district"))["features"]) == 125
    communities = json.loads(routes.labels_geojson("community"))["features"]
    assert len(communities) == len({f["properties"]["code"] for f in communities}) > 3000


def test_roads_are_the_named_lines_of_the_graph():
    roads = json.loads(routes.roads_geojson())["features"]
    names = {f["properties"]["name"] for f in roads}
    assert "景田路" in names and len(names) == len(roads) > 100
    lon, lat = roads[0]["geometry"]["coordinates"][0][0]
    assert 113.99 < lon < 114.05 and 22.51 < lat < 22.56


def test_place_search_gives_the_geocoders_candidates():
    items = routes.search_places("东涌镇")
    assert {i["district_adcode"] for i in items} == {"440115", "441502"}
    assert all(i["uncertainty_m"] > 0 and i["precision"] == "township" for i in items)
    assert routes.search_places("") == [] and routes.search_places("北京市朝阳区") == []


def test_routes_serve_labels_roads_and_search():
    import flask
    app = flask.Flask("t")
    routes.register(app)
    c = app.test_client()
    assert c.get("/yzt/geo/labels/township.geojson").status_code == 200
    assert c.get("/yzt/geo/labels/nope.geojson").status_code == 404
    assert c.get("/yzt/geo/roads.geojson").get_json()["features"]
    assert c.get("/yzt/geo/search?q=广州市番禺区大石街道").get_json()["items"][0]["precision"] == "township"


@pytest.mark.parametrize("u, lat, lo, hi", [(6600, 23.1, 11, 13), (320, 22.5, 15, 16), (48000, 23.2, 8, 10),
                                            (None, 23.0, 14, 14), (0, 23.0, 14, 14)])
def test_the_camera_pull_up_covers_the_uncertainty(u, lat, lo, hi):
    z = mapview.zoom_for(u, lat)
    assert lo <= z <= hi
    if u:   # at that zoom the circle's radius fits in ~220 px
        m_per_px = 156543.03 * __import__("math").cos(__import__("math").radians(lat)) / 2 ** z
        assert u / m_per_px <= 220


def test_an_uncertain_point_gets_a_circle_a_given_point_does_not():
    c = mapview.uncertainty_circle(23.1, 113.3, 1500.0, "x")
    assert c is not None and c.radius == 1500.0
    assert mapview.uncertainty_circle(23.1, 113.3, 0.0, "x") is None


def test_call_text_fills_only_what_the_words_say():
    got = report.fill_from_text("广州市天河区体育西路191号 写字楼火灾 5人被困")
    assert got["type"] == "fire" and got["address"] == "广州市天河区体育西路191号"
    assert got["deaths"] is None and got["serious"] is None and got["missing"] is None   # left as they were
    assert any("trapped: 5" in line for line in got["info"])
    assert any("unknown" in line for line in got["info"])
