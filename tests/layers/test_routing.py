"""layers.routing: drive times on a hand-checkable graph and on the real Futian OSM graph."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from incidents.model import Point
from layers import routing
from layers.errors import LayerError
from layers.index import metric_xy
from layers.routing import ROAD_GRAPH, STRAIGHT_LINE, RoadGraph, drive_times, rank_by_drive_time

TINY = Path(__file__).resolve().parents[1] / "data/query_tiny_roads.graphml"
NODE = {"1": (114.000, 22.530), "2": (114.002, 22.530), "3": (114.004, 22.530),
        "4": (114.002, 22.532), "5": (114.000, 22.532)}
SLOW = routing.SNAP_SPEED_KMH / 3.6


@pytest.fixture(scope="module")
def tiny() -> RoadGraph:
    return RoadGraph.from_graphml(TINY)


@pytest.fixture(scope="module")
def futian() -> RoadGraph:
    return routing.road_graph()


def at(node: str, **extra) -> dict:
    lon, lat = NODE[node]
    return {"id": node, "name": f"站{node}", "lon": lon, "lat": lat, **extra}


def test_hand_checked_times_respect_the_one_way(tiny):
    # station 1 to incident 2: the one-way primary, posted 30 km/h: 200 m in 24 s
    [there] = drive_times(Point(*NODE["2"]), [at("1")], graph=tiny)
    assert (there["drive_time_s"], there["drive_distance_m"], there["drive_time_method"]) == (24.0, 200.0, ROAD_GRAPH)
    # station 2 to incident 1 may not go against it: 2->4->5->1, 600 m of residential at 20 km/h
    [back] = drive_times(Point(*NODE["1"]), [at("2")], graph=tiny)
    assert (back["drive_time_s"], back["drive_distance_m"]) == (108.0, 600.0)


def test_footways_no_access_and_car_parks_are_not_driven(tiny):
    # 3 to 1 would be 50 m by footway, 20 m through a car park; 3->2->4->5->1 is 800 m (144 s),
    # 3->4 (the list-class link at 20 km/h) ->5->1 is 700 m (54 + 72 = 126 s)
    [r] = drive_times(Point(*NODE["1"]), [at("3")], graph=tiny)
    assert (r["drive_time_s"], r["drive_distance_m"]) == (126.0, 700.0)
    assert not tiny.graph.has_edge("1", "3") and not tiny.graph.has_edge("4", "1")
    assert not tiny.graph.has_edge("5", "3")


def test_snap_distance_is_added_at_the_slow_speed(tiny):
    station = Point(114.0004, 22.5302)   # inside the graph's hull, nearest node 1
    snap = tiny.snap(station)
    assert snap.node == "1" and 20 < snap.distance_m < 60
    [r] = drive_times(Point(*NODE["2"]), [{"id": "x", "lon": station.lon, "lat": station.lat}], graph=tiny)
    assert r["drive_time_s"] == pytest.approx(24.0 + snap.distance_m / SLOW, abs=0.05)
    assert r["drive_distance_m"] == pytest.approx(200 + snap.distance_m, abs=0.05)


def test_times_grow_with_route_length_and_order_is_kept(tiny):
    # incident at 1; stations 5 (200 m), 4 (400 m), 2 (600 m), all residential
    got = drive_times(Point(*NODE["1"]), [at("2"), at("5"), at("4")], graph=tiny)
    assert [c["id"] for c in got] == ["2", "5", "4"]                 # drive_times keeps the order
    ranked = rank_by_drive_time(Point(*NODE["1"]), [at("2"), at("5"), at("4")], graph=tiny)
    assert [c["id"] for c in ranked] == ["5", "4", "2"]
    times = [c["drive_time_s"] for c in ranked]
    lengths = [c["drive_distance_m"] for c in ranked]
    assert all(t > 0 for t in times) and times == sorted(times) and lengths == sorted(lengths)
    assert [round(t / d, 4) for t, d in zip(times, lengths)] == [0.18] * 3   # 20 km/h = 0.18 s/m


def test_outside_the_graph_is_a_labelled_straight_line_estimate(tiny):
    incident = Point(*NODE["2"])
    far = {"id": "far", "lon": 114.02, "lat": 22.53}
    [r] = drive_times(incident, [far], graph=tiny)
    ax, ay = metric_xy(incident)
    bx, by = metric_xy(Point(114.02, 22.53))
    straight = math.hypot(bx - ax, by - ay)
    assert r["drive_time_method"] == STRAIGHT_LINE
    assert r["drive_time_s"] == pytest.approx(straight * 1.4 / (30 / 3.6), abs=0.05)
    # an incident outside makes every candidate an estimate, even one on the graph
    [r2] = drive_times(Point(114.02, 22.53), [at("1")], graph=tiny)
    assert r2["drive_time_method"] == STRAIGHT_LINE


@settings(max_examples=50, deadline=None)
@given(a=st.floats(1, 50_000), b=st.floats(1, 50_000))
def test_straight_line_estimate_is_positive_and_monotone(a, b):
    ta, tb = routing.straight_line_estimate_s(a), routing.straight_line_estimate_s(b)
    assert ta > 0 and tb > 0 and (ta <= tb) == (a <= b)


def test_real_graph_one_way_pair_differs(futian):
    # 深南大道 (primary) westbound carriageway, OSM nodes 7973099524 -> 7973099525 (84 m, one-way):
    # east to west is one edge; west to east must turn round via the other carriageway
    east, west = Point(114.0286178, 22.5404876), Point(114.02781, 22.5403504)
    [e2w] = drive_times(west, [{"id": "E", "lon": east.lon, "lat": east.lat}], graph=futian)
    [w2e] = drive_times(east, [{"id": "W", "lon": west.lon, "lat": west.lat}], graph=futian)
    assert e2w["drive_time_method"] == w2e["drive_time_method"] == ROAD_GRAPH
    assert e2w["drive_distance_m"] == pytest.approx(84.353, abs=0.1)
    assert e2w["drive_time_s"] == pytest.approx(84.353 / (routing.SPEED_KMH["primary"] / 3.6), abs=0.1)
    assert w2e["drive_time_s"] > 10 * e2w["drive_time_s"] and w2e["drive_distance_m"] > 500


def test_real_graph_guangzhou_incident_is_an_estimate(futian):
    stations = [{"id": "ft1", "lon": 114.02, "lat": 22.535}, {"id": "ft2", "lon": 114.03, "lat": 22.54}]
    got = drive_times(Point(113.26, 23.13), stations, graph=futian)
    assert {c["drive_time_method"] for c in got} == {STRAIGHT_LINE}
    inside = drive_times(Point(114.02, 22.535), stations, graph=futian)
    assert [c["drive_time_method"] for c in inside] == [ROAD_GRAPH, ROAD_GRAPH]
    assert 0 < inside[0]["drive_time_s"] < inside[1]["drive_time_s"]


def test_real_graph_drive_network_has_no_footways(futian):
    assert futian.graph.number_of_edges() > 2000
    raw = routing.nx.read_graphml(futian.source)
    drivable = {(u, v) for u, v, d in raw.edges(data=True) if routing.edge_speed_kmh(d) is not None}
    walk_only = {(u, v) for u, v, d in raw.edges(data=True)
                 if d.get("highway") in ("footway", "steps", "pedestrian")} - drivable
    kept = set(futian.graph.edges)
    assert kept == drivable
    assert len(walk_only) > 500 and not walk_only & kept


def test_gcj02_incident_is_converted():
    pytest.importorskip("incidents.coords")
    from incidents.coords import wgs84_to_gcj02
    tiny = RoadGraph.from_graphml(TINY)
    lon, lat = wgs84_to_gcj02(*NODE["2"])
    [r] = drive_times(Point(lon, lat, "gcj02"), [at("1")], graph=tiny)
    assert r["drive_time_method"] == ROAD_GRAPH and r["drive_time_s"] == pytest.approx(24.0, abs=0.5)


@pytest.mark.parametrize("raw, speed", [
    ({"highway": "primary"}, 50), ({"highway": "primary", "maxspeed": "40"}, 40),
    ({"highway": "residential", "maxspeed": "60"}, 20), ({"highway": "['primary', 'trunk']"}, 50),
    ({"highway": "footway"}, None), ({"highway": "['cycleway', 'service']"}, None), ({"highway": "track"}, None),
    ({"highway": "service", "service": "parking_aisle"}, None), ({"highway": "service", "access": "private"}, 15),
    ({"highway": "residential", "access": "no"}, None), ({}, None),
])
def test_edge_speed_table(raw, speed):
    assert routing.edge_speed_kmh(raw) == speed


def test_candidate_without_coordinates_is_refused(tiny):
    with pytest.raises(LayerError, match="candidate 0"):
        drive_times(Point(*NODE["2"]), [{"id": "nowhere"}], graph=tiny)


def test_missing_graph_file_is_refused(tmp_path):
    with pytest.raises(LayerError, match="not found"):
        RoadGraph.from_graphml(tmp_path / "none.graphml")


def test_graph_is_built_only_when_a_point_lies_inside_its_coverage():
    # a fresh graph answers a point outside its hull from the hull alone (no networkx graph, no snap index);
    # the first point inside builds them, and the answers are those of a graph built at once
    lazy, eager = RoadGraph.from_graphml(TINY), RoadGraph(routing.road_graph(TINY).graph, _xy(TINY), source="x")
    far = Point(113.2, 23.1)
    assert lazy.snap(far) is None and lazy._core is None
    [outside] = drive_times(far, [at("1")], graph=lazy)
    assert outside["drive_time_method"] == STRAIGHT_LINE and lazy._core is None
    for node in NODE:
        assert drive_times(Point(*NODE[node]), [at(n) for n in NODE], graph=lazy) == \
            drive_times(Point(*NODE[node]), [at(n) for n in NODE], graph=eager)
    assert lazy._core is not None and list(lazy.graph.edges(data=True)) == list(eager.graph.edges(data=True))


def _xy(path: Path) -> dict:
    return routing._drive_edges(path)[1]


def test_a_graph_without_drivable_edges_is_refused():
    with pytest.raises(LayerError, match="no drivable edge"):
        RoadGraph(None, {"1": (0.0, 0.0)}, source="empty", edges={})
